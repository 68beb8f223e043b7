import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { shippedOpenApiDocument, servedOpenApiDocument } from '@pixelmill/kit/testing';
import { createLogger } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import { TaskService } from '../../src/domain/task-service';

const shipped = shippedOpenApiDocument('taskdb');

describe('taskdb OpenAPI document', () => {
  let dir: string;
  let repository: SqliteTaskRepository;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-'));
    repository = new SqliteTaskRepository(path.join(dir, 'tasks.sqlite'));
  });

  afterEach(async () => {
    await repository.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const app = () =>
    createApp({
      tasks: new TaskService(repository, { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 }),
      logger: createLogger('taskdb', 'silent'),
      ping: () => repository.ping(),
      tokens: { internal: 'internal-token-0123456789' },
    });

  it('when the app is built, then every route it mounts is documented, and every documented route is mounted', () => {
    expect(mountedRoutes(app())).toEqual(documentedRoutes(shipped));
  });

  it('when GET /openapi.json is asked without a token, then it answers the shipped document', async () => {
    expect(await servedOpenApiDocument(app())).toEqual({ status: 200, body: shipped });
  });
});
