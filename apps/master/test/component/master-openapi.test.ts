import fs from 'node:fs';
import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { ContractClient, createLogger, deriveSigningKey, listen } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { ImageService } from '../../src/domain/image-service';

/** The document the contracts package ships for master. */
const shipped = JSON.parse(fs.readFileSync(require.resolve('@pixelmill/contracts/openapi/master.json'), 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
};
const INTERNAL_TOKEN = 'internal-token-0123456789';

describe('master OpenAPI document', () => {
  // Neither is called: the route table and the document need no taskdb or storage.
  const nowhere = 'http://127.0.0.1:9';
  const taskdb = new ContractClient({ service: 'taskdb', baseUrl: nowhere, token: INTERNAL_TOKEN });
  const storage = new ContractClient({ service: 'storage', baseUrl: nowhere, token: INTERNAL_TOKEN });

  const app = () =>
    createApp({
      images: new ImageService({
        taskdb,
        storage,
        leaseMs: 30_000,
        claimRecheckMs: 200,
        storageUrl: async () => nowhere,
        signingKey: deriveSigningKey(INTERNAL_TOKEN),
        signedUrlTtlMs: 60_000,
      }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [taskdb, storage],
      tokens: { internal: INTERNAL_TOKEN, worker: 'worker-token-0123456789ab' },
    });

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
