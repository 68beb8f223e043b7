import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { shippedOpenApiDocument, servedOpenApiDocument } from '@pixelmill/kit/testing';
import { ContractClient, createLogger, deriveSigningKey } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { ImageService } from '../../src/domain/image-service';
import { TaskAdmin } from '../../src/domain/task-admin';

const shipped = shippedOpenApiDocument('master');
const INTERNAL_TOKEN = 'internal-token-0123456789';

describe('master OpenAPI document', () => {
  // Neither is called: the route table and the document need no taskdb or storage.
  const nowhere = 'http://127.0.0.1:9';
  const taskdb = new ContractClient({ service: 'taskdb', baseUrl: nowhere, token: INTERNAL_TOKEN });
  const storage = new ContractClient({ service: 'storage', baseUrl: nowhere, token: INTERNAL_TOKEN });

  const gateways = {
    tasks: new TaskGateway(taskdb),
    store: new ImageStoreGateway(storage, { publicUrl: async () => nowhere, signingKey: deriveSigningKey(INTERNAL_TOKEN) }),
  };
  const images = new ImageService({ ...gateways, leaseMs: 30_000, claimRecheckMs: 200, signedUrlTtlMs: 60_000 });
  const app = () =>
    createApp({
      images,
      admin: new TaskAdmin({ ...gateways, images, retentionMs: 3_600_000 }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [taskdb, storage],
      tokens: { internal: INTERNAL_TOKEN, worker: 'worker-token-0123456789ab' },
    });

  it('when the app is built, then every route it mounts is documented, and every documented route is mounted', () => {
    expect(mountedRoutes(app())).toEqual(documentedRoutes(shipped));
  });

  it('when GET /openapi.json is asked without a token, then it answers the shipped document', async () => {
    expect(await servedOpenApiDocument(app())).toEqual({ status: 200, body: shipped });
  });
});
