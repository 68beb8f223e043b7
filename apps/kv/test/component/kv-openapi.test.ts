import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { createLogger, listen } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { KvRepository } from '../../src/data-access/kv-repository';

/** The document the contracts package ships for kv. */
const shipped = JSON.parse(fs.readFileSync(require.resolve('@pixelmill/contracts/openapi/kv.json'), 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
};

describe('kv OpenAPI document', () => {
  let dir: string;
  let repository: KvRepository;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-kv-'));
    repository = new KvRepository(path.join(dir, 'kv.sqlite'));
  });

  afterEach(() => {
    repository.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const app = () => createApp({ repository, logger: createLogger('kv', 'silent'), tokens: { internal: 'internal-token-0123456789' } });

  it('when the app is built, then every route it mounts is documented, and every documented route is mounted', () => {
    expect(mountedRoutes(app())).toEqual(documentedRoutes(shipped));
  });

  it('when GET /openapi.json is asked without a token, then it answers the shipped document', async () => {
    const server = await listen(app(), 0);
    try {
      const response = await fetch(`${server.url}/openapi.json`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual(shipped);
    } finally {
      await server.close();
    }
  });
});
