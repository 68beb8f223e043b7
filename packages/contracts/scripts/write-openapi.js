// Writes each service's OpenAPI document into dist/openapi/<service>.json, from the built package,
// so the documents ship with it (`@pixelmill/contracts/openapi/<service>.json`).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { SERVICE_NAMES, serviceOpenApiDocument } = require('@pixelmill/contracts');
const { version } = require('../package.json');

const folder = path.join(__dirname, '..', 'dist', 'openapi');
fs.mkdirSync(folder, { recursive: true });
for (const service of SERVICE_NAMES) {
  const file = path.join(folder, `${service}.json`);
  fs.writeFileSync(file, `${JSON.stringify(serviceOpenApiDocument(service, version), null, 2)}\n`);
}
