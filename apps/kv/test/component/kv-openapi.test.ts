import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { shippedOpenApiDocument, servedOpenApiDocument } from '@pixelmill/kit/testing';
import { createLogger } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import type { KvRepository } from '../../src/data-access/kv-repository';
import { SqliteKvRepository } from '../../src/data-access/sqlite-kv-repository';

const shipped = shippedOpenApiDocument('kv');

describe('kv OpenAPI document', () => {
  let dir: string;
  let repository: KvRepository;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-kv-'));
    repository = new SqliteKvRepository(path.join(dir, 'kv.sqlite'));
  });

  afterEach(async () => {
    await repository.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const app = () => createApp({ repository, logger: createLogger('kv', 'silent'), tokens: { internal: 'internal-token-0123456789' } });

  it('when the app is built, then every route it mounts is documented, and every documented route is mounted', () => {
    expect(mountedRoutes(app())).toEqual(documentedRoutes(shipped));
  });

  it('when GET /openapi.json is asked without a token, then it answers the shipped document', async () => {
    expect(await servedOpenApiDocument(app())).toEqual({ status: 200, body: shipped });
  });
});
