import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  ErrorBodySchema,
  masterAdminContract,
  masterContract,
  resultKey,
  storageContract,
  StoredObjectSchema,
  taskdbContract,
  type TaskDetail,
  type Work,
} from '@pixelmill/contracts';
import { ContractClient, createLogger, deriveSigningKey, listen, type Listening } from '@pixelmill/kit';
import type { ServiceProcess } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { Housekeeper } from '../../src/domain/housekeeper';
import { ImageService } from '../../src/domain/image-service';
import { RETRY_MARGIN_MS, TaskAdmin } from '../../src/domain/task-admin';
import { INTERNAL_TOKEN, pngOf, startDependency, until } from './fixtures';

const PNG = pngOf(2, 2);
const RESULT = pngOf(2, 2, 'swapped pixels');
const WORKER_TOKEN = 'worker-token-0123456789ab';
const RETENTION_MS = 3_600_000;
/** Longer than any test waits: a waiting isReady here is answered by a wake, never by its recheck. */
const CLAIM_RECHECK_MS = 30_000;

/** master's admin routes over real HTTP, with the built taskdb and storage running as their own processes. */
describe('master admin routes', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let server: Listening;
  let master: ContractClient;
  let worker: ContractClient;
  let storage: ContractClient;
  let taskdb: ContractClient;
  let images: ImageService;
  let gateways: { tasks: TaskGateway; store: ImageStoreGateway };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-admin-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    taskdb = new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN });
    storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    gateways = {
      tasks: new TaskGateway(taskdb),
      store: new ImageStoreGateway(storage, { publicUrl: async () => storageProcess.url!, signingKey: deriveSigningKey(INTERNAL_TOKEN) }),
    };
    images = new ImageService({ ...gateways, leaseMs: 30_000, claimRecheckMs: CLAIM_RECHECK_MS, signedUrlTtlMs: 60_000 });
    const app = createApp({
      images,
      admin: new TaskAdmin({ ...gateways, images, retentionMs: RETENTION_MS }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [taskdb, storage],
      tokens: { internal: INTERNAL_TOKEN, worker: WORKER_TOKEN },
    });
    server = await listen(app, 0);
    master = new ContractClient({ service: 'master', baseUrl: server.url, token: INTERNAL_TOKEN });
    worker = new ContractClient({ service: 'master', baseUrl: server.url, token: WORKER_TOKEN });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await Promise.all([taskdbProcess?.stop(), storageProcess?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Each test starts with no task waiting: those left are cancelled (they end failed, not claimed). */
  beforeEach(async () => {
    for (;;) {
      const waiting = await taskdb.call(taskdbContract.list, { query: { state: 'not_started', limit: 1000 } });
      if (waiting.status !== 200 || waiting.body.ids.length === 0) return;
      for (const id of waiting.body.ids) await master.call(masterAdminContract.cancelTask, { params: { id } });
    }
  });

  const upload = async (): Promise<string> => {
    const result = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: {} });
    if (result.status !== 202) throw new Error(`newImage answered ${result.status}`);
    return result.body.id;
  };
  const claim = async (): Promise<Work> => {
    const work = await worker.call(masterContract.getWork, { query: { waitMs: 0 } });
    if (work.status !== 200) throw new Error(`getWork answered ${work.status}`);
    return work.body;
  };
  /** An uploaded image whose worker reported it cannot be done. */
  const failedTask = async (reason = 'could not decode image/png'): Promise<string> => {
    const id = await upload();
    const work = await claim();
    expect(work.id).toBe(id);
    expect((await worker.call(masterContract.workFailed, { body: { id, leaseToken: work.leaseToken, reason } })).status).toBe(200);
    return id;
  };
  /** Stores a result at the work's signed URL and reports it, as a worker does. */
  const finish = async (work: Work) => {
    const put = await fetch(work.resultUrl, { method: 'POST', body: RESULT, headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(201);
    const { receipt } = StoredObjectSchema.parse(await put.json());
    return worker.call(masterContract.workFinished, { body: { id: work.id, leaseToken: work.leaseToken, receipt } });
  };
  const stored = (state: 'inProgress' | 'finished', key: string) => fs.existsSync(path.join(dir, 'storage', state, key));
  /** A request as any client sends it; `null`: with no token. */
  const send = (method: string, urlPath: string, token: string | null = INTERNAL_TOKEN) =>
    fetch(`${server.url}${urlPath}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const refusal = async (response: Response, status: number): Promise<string> => {
    expect(response.status).toBe(status);
    return ErrorBodySchema.parse(await response.json()).error.message;
  };

  // First of the file: the failed tasks are only these.
  it('when the failed tasks are listed two at a time, then three pages hold them all, oldest first, as whole records', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await failedTask(`reason ${i}`));

    const pages: TaskDetail[][] = [];
    let cursor: string | undefined;
    do {
      const page = await master.call(masterAdminContract.listTasks, { query: { state: 'failed', limit: 2, cursor } });
      if (page.status !== 200) throw new Error(`listTasks answered ${page.status}`);
      pages.push(page.body.tasks);
      cursor = page.body.nextCursor ?? undefined;
    } while (cursor !== undefined);

    expect(pages.map((page) => page.map((task) => task.id))).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    expect(pages[0]![1]).toMatchObject({
      id: ids[1],
      op: 'swap-red-blue',
      state: 'failed',
      attempt: 1,
      error: 'reason 1',
      owner: null,
      sourceBytes: PNG.length,
      resultBytes: null,
      sourceStored: true,
      expiredAt: null,
    });
    expect(Date.parse(pages[0]![1]!.createdAt)).toBeLessThanOrEqual(Date.parse(pages[0]![1]!.updatedAt));
  });

  it('when the page asked for is larger than 1000, or the state or cursor is not one, then it is a 400', async () => {
    for (const query of ['state=failed&limit=1001', 'state=done', 'limit=10', 'state=failed&cursor=x']) {
      expect(await refusal(await send('GET', `/admin/tasks?${query}`), 400)).toMatch(/query/);
    }
  });

  it('when a failed task is retried, then it waits again without its error, and a worker claims it from its source and finishes it', async () => {
    const id = await failedTask();
    // A failed task keeps its source through housekeeping: a retry needs it.
    await new Housekeeper({ ...gateways, logger: createLogger('master', 'silent'), retentionMs: RETENTION_MS, maxBatches: 1000 }).sweep();
    expect(stored('inProgress', id)).toBe(true);

    const retried = await master.call(masterAdminContract.retryTask, { params: { id } });
    expect(retried).toMatchObject({ status: 200, body: { id, state: 'not_started', error: null, attempt: 1, sourceStored: true } });
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'not_started' });

    const work = await claim();
    expect(work).toMatchObject({ id, attempt: 2 });
    const source = await fetch(work.sourceUrl);
    expect(Buffer.from(await source.arrayBuffer())).toEqual(PNG);
    expect(await finish(work)).toMatchObject({ status: 200, body: { id, state: 'finished' } });
    expect((await master.call(masterContract.get, { query: { id } })).body).toEqual(RESULT);
  });

  it.each(['not_started', 'in_progress', 'finished'] as const)(
    'when a task in %s is retried, then it is a 409 that says its state, and nothing changes',
    async (state) => {
      const id = await upload();
      if (state !== 'not_started') {
        const work = await claim();
        if (state === 'finished') expect((await finish(work)).status).toBe(200);
      }
      const message = await refusal(await send('POST', `/admin/tasks/${id}/retry`), 409);
      expect(message).toBe(`task ${id} is ${state}: only a failed task can be retried`);
      const task = await taskdb.call(taskdbContract.get, { params: { id } });
      expect(task.status === 200 && task.body.state).toBe(state);
    },
  );

  it('when a failed task whose image is no longer stored is retried, then it is a 409 that says so, and it stays failed', async () => {
    const id = await failedTask();
    await storage.call(storageContract.delete, { params: { state: 'inProgress', key: id } });
    expect(await refusal(await send('POST', `/admin/tasks/${id}/retry`), 409)).toBe(
      `task ${id} cannot be retried: its image is no longer stored; upload it again`,
    );
    const task = await taskdb.call(taskdbContract.get, { params: { id } });
    expect(task.status === 200 && task.body.state).toBe('failed');
  });

  it('when a failed task is retried so near the end of its retention that its files may be deleting, then it is a 409', async () => {
    const id = await failedTask();
    const late = new TaskAdmin({
      ...gateways,
      images,
      retentionMs: RETENTION_MS,
      now: () => Date.now() + RETENTION_MS - RETRY_MARGIN_MS + 1_000,
    });
    await expect(late.retry(id)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/end of its retention/) });
  });

  it('when a waiting task is cancelled, then an isReady waiting for it answers failed, cancelled, and no worker gets it', async () => {
    const id = await upload();
    const waiting = master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
    await until(() => images.ended.waiting(id) === 1);

    const cancelled = await master.call(masterAdminContract.cancelTask, { params: { id } });

    expect(cancelled).toMatchObject({ status: 200, body: { id, state: 'failed', error: 'cancelled by an operator', attempt: 0 } });
    expect((await waiting).body).toEqual({ id, state: 'failed', error: 'cancelled by an operator' });
    expect((await worker.call(masterContract.getWork, { query: { waitMs: 0 } })).status).toBe(204);
    // Sent again (a lost answer), it answers the cancelled task.
    expect(await master.call(masterAdminContract.cancelTask, { params: { id } })).toMatchObject({ status: 200, body: { state: 'failed' } });
  });

  it('when a task a worker holds is cancelled, then it is a 409 that says it is in progress, and the worker finishes it', async () => {
    const id = await upload();
    const work = await claim();
    const message = await refusal(await send('POST', `/admin/tasks/${id}/cancel`), 409);
    expect(message).toMatch(new RegExp(`^task ${id} is in_progress: only a waiting \\(not_started\\) task can be cancelled`));
    expect(await finish(work)).toMatchObject({ status: 200, body: { state: 'finished' } });
  });

  it('when a finished task is deleted, then its record and every stored byte go, the public API answers 404, and deleting it again is a 404', async () => {
    const id = await upload();
    const first = await claim();
    // Its first attempt left a result behind before it was given back (taskdb's retry backoff is 0 here).
    await storage.call(storageContract.put, {
      params: { state: 'finished', key: resultKey(id, 1) },
      body: RESULT,
      contentType: 'image/png',
    });
    await worker.call(masterContract.workReleased, { body: { id, leaseToken: first.leaseToken, reason: 'shutting down' } });
    const second = await claim();
    expect(second).toMatchObject({ id, attempt: 2 });
    expect((await finish(second)).status).toBe(200);
    expect([stored('inProgress', id), stored('finished', resultKey(id, 1)), stored('finished', resultKey(id, 2))]).toEqual([
      true,
      true,
      true,
    ]);

    expect((await master.call(masterAdminContract.deleteTask, { params: { id } })).status).toBe(204);

    expect([stored('inProgress', id), stored('finished', resultKey(id, 1)), stored('finished', resultKey(id, 2))]).toEqual([
      false,
      false,
      false,
    ]);
    expect((await taskdb.call(taskdbContract.get, { params: { id } })).status).toBe(404);
    expect((await master.call(masterContract.isReady, { query: { id } })).status).toBe(404);
    expect((await master.call(masterContract.get, { query: { id } })).status).toBe(404);
    expect(await refusal(await send('DELETE', `/admin/tasks/${id}`), 404)).toBe(`no task ${id}`);
  });

  it('when a waiting task is deleted, then it is cancelled first, so its waiting isReady answers, and then it is gone', async () => {
    const id = await upload();
    const waiting = master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
    await until(() => images.ended.waiting(id) === 1);

    expect((await master.call(masterAdminContract.deleteTask, { params: { id } })).status).toBe(204);

    expect((await waiting).body).toEqual({ id, state: 'failed', error: 'deleted by an operator' });
    expect(stored('inProgress', id)).toBe(false);
    expect((await master.call(masterContract.isReady, { query: { id } })).status).toBe(404);
    expect((await worker.call(masterContract.getWork, { query: { waitMs: 0 } })).status).toBe(204);
  });

  it('when a task a worker holds is deleted, then it is a 409 that says it is in progress, and the task and its image stay', async () => {
    const id = await upload();
    const work = await claim();
    expect(await refusal(await send('DELETE', `/admin/tasks/${id}`), 409)).toMatch(
      new RegExp(`^task ${id} is in_progress: a worker holds it`),
    );
    expect(stored('inProgress', id)).toBe(true);
    expect(await finish(work)).toMatchObject({ status: 200, body: { state: 'finished' } });
  });

  it.each([
    ['GET', '/admin/tasks?state=failed'],
    ['POST', `/admin/tasks/${randomUUID()}/retry`],
    ['POST', `/admin/tasks/${randomUUID()}/cancel`],
    ['DELETE', `/admin/tasks/${randomUUID()}`],
  ])('when %s %s comes without the internal token, or with the worker token, then it is a 401', async (method, urlPath) => {
    expect(await refusal(await send(method, urlPath, null), 401)).toMatch(/INTERNAL_TOKEN/);
    expect((await send(method, urlPath, WORKER_TOKEN)).status).toBe(401);
  });

  it.each([
    ['POST', '/admin/tasks/not-a-uuid/retry'],
    ['POST', '/admin/tasks/42/cancel'],
    ['DELETE', '/admin/tasks/..%2F..%2Fetc'],
  ])('when %s %s names a malformed id, then it is a 400 that names the id', async (method, urlPath) => {
    expect(await refusal(await send(method, urlPath), 400)).toMatch(/id/);
  });

  it.each(['retry', 'cancel'])('when an unknown task is asked to %s, then it is a 404 that names it', async (action) => {
    const id = randomUUID();
    expect(await refusal(await send('POST', `/admin/tasks/${id}/${action}`), 404)).toBe(`no task ${id}`);
  });
});
