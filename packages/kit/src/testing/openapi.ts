import fs from 'node:fs';
import type { Express } from 'express';
import type { ServiceName } from '@pixelmill/contracts';
import { listen } from '../server';

/** An OpenAPI document as the route-table helpers of `@pixelmill/contracts/testing` read it. */
export interface OpenApiPaths {
  paths: Record<string, Record<string, unknown>>;
}

/** The document the contracts package ships for a service (`@pixelmill/contracts/openapi/<service>.json`). */
export function shippedOpenApiDocument(service: ServiceName): OpenApiPaths {
  return JSON.parse(fs.readFileSync(require.resolve(`@pixelmill/contracts/openapi/${service}.json`), 'utf8')) as OpenApiPaths;
}

/** What `GET /openapi.json` of the app answers, asked without a token on a port of its own. */
export async function servedOpenApiDocument(app: Express): Promise<{ status: number; body: unknown }> {
  const server = await listen(app, 0);
  try {
    const response = await fetch(`${server.url}/openapi.json`);
    return { status: response.status, body: await response.json() };
  } finally {
    await server.close();
  }
}
