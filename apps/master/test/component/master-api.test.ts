import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  ErrorBodySchema,
  masterContract,
  resultKey,
  storageContract,
  StoredObjectSchema,
  taskdbContract,
  type StorageReceipt,
  type Work,
} from '@pixelmill/contracts';
import { ContractClient, createLogger, deriveSigningKey, errorBodyMessage, issueReceipt, listen, type Listening } from '@pixelmill/kit';
import type { ServiceProcess } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { Housekeeper } from '../../src/domain/housekeeper';
import { ImageService } from '../../src/domain/image-service';
import { TaskAdmin } from '../../src/domain/task-admin';
import { startCountingProxy } from './counting-proxy';
import { INTERNAL_TOKEN, pngOf, startDependency, until } from './fixtures';

const PNG = pngOf(2, 2);
const RESULT = pngOf(2, 2, 'swapped pixels');
const WORKER_TOKEN = 'worker-token-0123456789ab';
const SIGNING_KEY = deriveSigningKey(INTERNAL_TOKEN)!;
/** How long the masters of these tests keep ended tasks. */
const RETENTION_MS = 3_600_000;

/** master over real HTTP, with the built taskdb and storage running as their own processes. */
describe('master API', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let server: Listening;
  let master: ContractClient;
  let worker: ContractClient;
  let taskdb: ContractClient;
  let storage: ContractClient;
  let images: ImageService;
  let admin: TaskAdmin;

  /** master's way to taskdb and storage, over these clients; `null`: no signing key. */
  const gatewaysOf = (taskdbClient: ContractClient, storageClient = storage, signingKey: string | null = SIGNING_KEY) => ({
    tasks: new TaskGateway(taskdbClient),
    store: new ImageStoreGateway(storageClient, { publicUrl: async () => storageProcess.url!, signingKey: signingKey ?? undefined }),
  });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    taskdb = new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN });
    storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    const gateways = gatewaysOf(taskdb);
    images = new ImageService({
      ...gateways,
      leaseMs: 30_000,
      claimRecheckMs: 200,
      signedUrlTtlMs: 60_000,
    });
    admin = new TaskAdmin({ ...gateways, images, retentionMs: RETENTION_MS });
    const app = createApp({
      images,
      admin,
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

  /** Drains work left by earlier tests so each test starts with an empty queue. */
  const drain = async (): Promise<void> => {
    for (;;) {
      const work = await worker.call(masterContract.getWork, { query: { waitMs: 0 } });
      if (work.status !== 200) return;
      await worker.call(masterContract.workFailed, { body: { id: work.body.id, leaseToken: work.body.leaseToken, reason: 'drained' } });
    }
  };
  beforeEach(drain);

  const upload = async (bytes = PNG, op?: 'invert') => {
    const result = await master.call(masterContract.newImage, { body: bytes, contentType: 'image/png', query: op ? { op } : {} });
    expect(result.status).toBe(202);
    return result.status === 202 ? result.body.id : '';
  };
  const claim = async (): Promise<Work> => {
    const work = await worker.call(masterContract.getWork, { query: { waitMs: 0 } });
    expect(work.status).toBe(200);
    return (work as { body: Work }).body;
  };
  /**
   * A second master over the same taskdb and storage, its calls to both counted by proxies, with
   * the stack's signing key (or none, when not `keyed`: then it cannot check receipts); with
   * `olderStorage`, storage has no `POST /deletions` (a version older than it).
   */
  const startCountedMaster = async ({ claimRecheckMs = 200, keyed = true, olderStorage = false } = {}) => {
    const [taskdbProxy, storageProxy] = await Promise.all([
      startCountingProxy(taskdbProcess.url!),
      startCountingProxy(storageProcess.url!, { missingRoutes: olderStorage ? ['POST /deletions'] : [] }),
    ]);
    const gateways = gatewaysOf(
      new ContractClient({ service: 'taskdb', baseUrl: taskdbProxy.url, token: INTERNAL_TOKEN }),
      new ContractClient({ service: 'storage', baseUrl: storageProxy.url, token: INTERNAL_TOKEN }),
      keyed ? SIGNING_KEY : null,
    );
    const counted = new ImageService({
      ...gateways,
      leaseMs: 30_000,
      claimRecheckMs,
      signedUrlTtlMs: 60_000,
    });
    const app = createApp({
      images: counted,
      admin: new TaskAdmin({ ...gateways, images: counted, retentionMs: RETENTION_MS }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [],
      tokens: { internal: INTERNAL_TOKEN, worker: WORKER_TOKEN },
    });
    const other = await listen(app, 0);
    return {
      images: counted,
      /** A housekeeper whose calls are counted too. */
      housekeeper: () =>
        new Housekeeper({ ...gateways, logger: createLogger('master', 'silent'), retentionMs: 3_600_000, batchSize: 1000, maxBatches: 1 }),
      master: new ContractClient({ service: 'master', baseUrl: other.url, token: INTERNAL_TOKEN }),
      worker: new ContractClient({ service: 'master', baseUrl: other.url, token: WORKER_TOKEN }),
      /** How many times taskdb was asked for the task. */
      taskReads: (id: string) => taskdbProxy.requests.filter((request) => request === `GET /tasks/${id}`).length,
      /** Every request that reached storage through this master. */
      storageRequests: storageProxy.requests,
      close: async () => {
        await other.close();
        await Promise.all([taskdbProxy.close(), storageProxy.close()]);
      },
    };
  };
  /** Uploads a result to the work's signed URL, as a worker does, and answers storage's receipt. */
  const uploadResult = async (work: Work, bytes = RESULT): Promise<StorageReceipt> => {
    const put = await fetch(work.resultUrl, { method: 'POST', body: bytes, headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(201);
    const { receipt } = StoredObjectSchema.parse(await put.json());
    expect(receipt).toBeDefined();
    return receipt!;
  };
  const send = (
    method: string,
    urlPath: string,
    body?: Buffer | string,
    contentType = 'application/json',
    token = urlPath.match(/^\/(getWork|work|heartbeat)/) ? WORKER_TOKEN : INTERNAL_TOKEN,
  ) =>
    fetch(`${server.url}${urlPath}`, {
      method,
      body,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
    });

  it('when an image is accepted, then its bytes are stored under inProgress before the task exists', async () => {
    const id = await upload();
    const stored = await storage.call(storageContract.get, { params: { state: 'inProgress', key: id } });
    expect(stored.body).toEqual(PNG);
    const task = await taskdb.call(taskdbContract.get, { params: { id } });
    expect(task.status === 200 && task.body).toMatchObject({ state: 'not_started', op: 'swap-red-blue', contentType: 'image/png' });
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'not_started' });
  });

  it('when a worker does the work, then the image goes through in_progress to finished and can be downloaded', async () => {
    const id = await upload(PNG, 'invert');
    const work = await claim();
    expect(work).toMatchObject({ id, op: 'invert', contentType: 'image/png', attempt: 1 });
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'in_progress' });

    const early = await master.call(masterContract.get, { query: { id } });
    expect(early.status).toBe(409);

    const beat = await worker.call(masterContract.heartbeat, { body: { id, leaseToken: work.leaseToken } });
    expect(beat.status).toBe(200);

    await storage.call(storageContract.put, {
      params: { state: 'finished', key: resultKey(id, 1) },
      body: RESULT,
      contentType: 'image/png',
    });
    const done = await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    expect(done).toMatchObject({ status: 200, body: { id, state: 'finished' } });
    const again = await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    expect(again).toMatchObject({ status: 200, body: { id, state: 'finished' } });

    const result = await master.call(masterContract.get, { query: { id } });
    expect(result.status).toBe(200);
    expect(result.body).toEqual(RESULT);
    expect(result.headers['content-type']).toBe('image/png');
  });

  it("when a worker hands on storage's receipt, then master finishes the task without a call to storage; without one it reads the result back", async () => {
    const counted = await startCountedMaster();
    try {
      const id = await upload();
      const work = await claim();
      const receipt = await uploadResult(work);

      const done = await counted.worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken, receipt } });
      const again = await counted.worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken, receipt } });

      expect(done).toMatchObject({ status: 200, body: { id, state: 'finished' } });
      expect(again).toMatchObject({ status: 200, body: { id, state: 'finished' } });
      expect(counted.storageRequests).toEqual([]);
      const task = await taskdb.call(taskdbContract.get, { params: { id } });
      expect(task.status === 200 && task.body.resultBytes).toBe(RESULT.length);
      expect((await master.call(masterContract.get, { query: { id } })).body).toEqual(RESULT);

      const other = await upload();
      const otherWork = await claim();
      await uploadResult(otherWork);
      const readBack = await counted.worker.call(masterContract.workFinished, { body: { id: other, leaseToken: otherWork.leaseToken } });
      expect(readBack).toMatchObject({ status: 200, body: { id: other, state: 'finished' } });
      expect(counted.storageRequests).toEqual([`GET /objects/finished/${resultKey(other, 1)}`]);
    } finally {
      await counted.close();
    }
  });

  /** Uploads an image, claims it through `worker`'s master and stores a result: the lease and storage's receipt. */
  const claimAndStoreThrough = async (through: ContractClient) => {
    const id = await upload();
    const work = await through.call(masterContract.getWork, { query: { waitMs: 0 } });
    if (work.status !== 200) throw new Error(`getWork answered ${work.status}`);
    return { id, handedOut: work, receipt: await uploadResult(work.body) };
  };

  it('when a worker finishes a task this master handed out, then master does not read the task from taskdb again; for a lease handed out elsewhere it does', async () => {
    const counted = await startCountedMaster({ claimRecheckMs: 200 });
    try {
      const { id, handedOut, receipt } = await claimAndStoreThrough(counted.worker);
      const done = await counted.worker.call(masterContract.workFinished, {
        body: { id, leaseToken: handedOut.body.leaseToken, receipt },
      });
      expect(done).toMatchObject({ status: 200, body: { id, state: 'finished' } });
      expect(counted.taskReads(id)).toBe(0);

      // Claimed through the other master: this one knows nothing of the lease and asks taskdb.
      const other = await upload();
      const elsewhere = await claim();
      const otherReceipt = await uploadResult(elsewhere);
      const finished = await counted.worker.call(masterContract.workFinished, {
        body: { id: other, leaseToken: elsewhere.leaseToken, receipt: otherReceipt },
      });
      expect(finished).toMatchObject({ status: 200, body: { id: other, state: 'finished' } });
      expect(counted.taskReads(other)).toBe(1);
    } finally {
      await counted.close();
    }
  });

  it('when a lease this master handed out was lost meanwhile, then its workFinished is still refused by taskdb', async () => {
    const counted = await startCountedMaster({ claimRecheckMs: 200 });
    try {
      const { id, handedOut, receipt } = await claimAndStoreThrough(counted.worker);
      // The lease is given back (as the reaper would after it expired): the token no longer holds.
      const released = await taskdb.call(taskdbContract.changeState, {
        params: { id },
        body: { to: 'not_started', leaseToken: handedOut.body.leaseToken, error: 'lease expired' },
      });
      expect(released.status).toBe(200);

      const late = await counted.worker.call(masterContract.workFinished, {
        body: { id, leaseToken: handedOut.body.leaseToken, receipt },
      });
      expect(late.status).toBe(409);
      const task = await taskdb.call(taskdbContract.get, { params: { id } });
      expect(task.status === 200 && task.body.state).toBe('not_started');
    } finally {
      await counted.close();
    }
  });

  it('when master has no signing key, then a receipt cannot be checked and the result is read back from storage', async () => {
    const unkeyed = await startCountedMaster({ keyed: false });
    try {
      const id = await upload();
      const work = await claim();
      const receipt = await uploadResult(work);
      const done = await unkeyed.worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken, receipt } });
      expect(done).toMatchObject({ status: 200, body: { id, state: 'finished' } });
      expect(unkeyed.storageRequests).toEqual([`GET /objects/finished/${resultKey(id, 1)}`]);
    } finally {
      await unkeyed.close();
    }
  });

  /** The same text with its first character changed (a signature stays well-formed). */
  const flipFirst = (text: string) => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
  it.each<[string, (genuine: StorageReceipt, context: { earlier: StorageReceipt; otherTask: StorageReceipt }) => StorageReceipt, RegExp]>([
    ['a flipped byte in its signature', (genuine) => ({ ...genuine, signature: flipFirst(genuine.signature) }), /signature does not match/],
    ['an altered size', (genuine) => ({ ...genuine, size: genuine.size - 1 }), /signature does not match/],
    ['altered dimensions', (genuine) => ({ ...genuine, width: 3 }), /signature does not match/],
    ["another attempt's key (a genuine receipt)", (_genuine, { earlier }) => earlier, /is for finished\/\S+_1, not finished\/\S+_2/],
    ["another task's key (a genuine receipt)", (_genuine, { otherTask }) => otherTask, /is for finished\/\S+, not finished\//],
    ['a signature of another key', (genuine) => issueReceipt(genuine, deriveSigningKey('another-token')!), /signature does not match/],
    ['an expiry that has passed', (genuine) => issueReceipt(genuine, SIGNING_KEY, Date.now() - 3_600_000), /expired/],
  ])(
    'when a receipt has %s, then workFinished is a 422, storage is not asked instead, and the task stays in progress',
    async (_name, forge, message) => {
      const counted = await startCountedMaster();
      try {
        await upload();
        const otherTask = await uploadResult(await claim());
        const id = await upload();
        const first = await claim();
        const earlier = await uploadResult(first);
        await worker.call(masterContract.workReleased, { body: { id, leaseToken: first.leaseToken, reason: 'given back' } });
        const work = await claim();
        expect(work).toMatchObject({ id, attempt: 2 });
        const genuine = await uploadResult(work);

        const refused = await counted.worker.call(masterContract.workFinished, {
          body: { id, leaseToken: work.leaseToken, receipt: forge(genuine, { earlier, otherTask }) },
        });

        expect(refused.status).toBe(422);
        expect(errorBodyMessage(refused)).toMatch(/storage's receipt is refused/);
        expect(errorBodyMessage(refused)).toMatch(message);
        expect(counted.storageRequests).toEqual([]);
        expect((await master.call(masterContract.isReady, { query: { id } })).body).toMatchObject({ id, state: 'in_progress' });
        // The genuine receipt still finishes the task.
        const done = await counted.worker.call(masterContract.workFinished, {
          body: { id, leaseToken: work.leaseToken, receipt: genuine },
        });
        expect(done).toMatchObject({ status: 200, body: { id, state: 'finished' } });
      } finally {
        await counted.close();
      }
    },
  );

  it('when a worker reports finished without a stored result, then it is a 409 and the task stays in progress', async () => {
    const id = await upload();
    const work = await claim();
    const done = await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    expect(done.status).toBe(409);
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'in_progress' });
  });

  it('when a worker reports a failure, then the state is failed with the reason', async () => {
    const id = await upload();
    const work = await claim();
    await worker.call(masterContract.workFailed, { body: { id, leaseToken: work.leaseToken, reason: 'could not decode image/png' } });
    const status = await master.call(masterContract.isReady, { query: { id } });
    expect(status.body).toEqual({ id, state: 'failed', error: 'could not decode image/png' });
    const result = await master.call(masterContract.get, { query: { id } });
    expect(result.status).toBe(409);
  });

  it('when work is claimed, then it comes with signed storage URLs that work without a token', async () => {
    const id = await upload();
    const work = await claim();
    const source = await fetch(work.sourceUrl);
    expect(source.status).toBe(200);
    expect(Buffer.from(await source.arrayBuffer())).toEqual(PNG);
    const put = await fetch(work.resultUrl, { method: 'POST', body: RESULT, headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(201);
    expect((await fetch(work.sourceUrl.replace(id, randomUUID()))).status).toBe(403);
    const done = await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    expect(done.status).toBe(200);
  });

  it('when a worker releases its task, then it is not_started with the reason and can be claimed again', async () => {
    const id = await upload();
    const first = await claim();
    const released = await worker.call(masterContract.workReleased, {
      body: { id, leaseToken: first.leaseToken, reason: 'worker shutting down' },
    });
    expect(released).toMatchObject({ status: 200, body: { id, state: 'not_started', error: 'worker shutting down' } });
    const second = await claim();
    expect(second).toMatchObject({ id, attempt: 2 });
  });

  it('when an upload repeats its idempotency key, then the first task answers and no second copy is kept', async () => {
    const headers = { 'idempotency-key': `upload-${randomUUID()}` };
    const first = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: {}, headers });
    const again = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: {}, headers });
    expect(first.status).toBe(202);
    expect(again.status === 202 && first.status === 202 && again.body.id).toBe(first.status === 202 ? first.body.id : '');
    const stored = fs.readdirSync(path.join(dir, 'storage', 'inProgress'));
    expect(stored.filter((f) => f === (first.status === 202 ? first.body.id : '')).length).toBe(1);
    expect(fs.readdirSync(path.join(dir, 'storage', 'tmp'))).toEqual([]);
  });

  it('when a task has an owner, then only that owner sees it', async () => {
    const created = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: { owner: 'alice' } });
    const id = created.status === 202 ? created.body.id : '';
    expect((await master.call(masterContract.isReady, { query: { id, owner: 'alice' } })).status).toBe(200);
    expect((await master.call(masterContract.isReady, { query: { id, owner: 'bob' } })).status).toBe(404);
    expect((await master.call(masterContract.isReady, { query: { id } })).status).toBe(404);
    expect((await master.call(masterContract.get, { query: { id, owner: 'bob' } })).status).toBe(404);
  });

  it.each([
    ['the frontend side without a token', 'GET', `/isReady?id=${randomUUID()}`, ''],
    ['the frontend side with the worker token', 'GET', `/isReady?id=${randomUUID()}`, WORKER_TOKEN],
    ['the worker side with the internal token', 'GET', '/getWork', INTERNAL_TOKEN],
    ['the worker side without a token', 'POST', '/heartbeat', ''],
  ])('when %s is called, then it is a 401', async (_name, method, urlPath, token) => {
    const response = await send(method, urlPath, undefined, undefined, token);
    expect(response.status).toBe(401);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('unauthorized');
  });

  it('when there is no work, then getWork answers 204 after waiting', async () => {
    const started = Date.now();
    const work = await worker.call(masterContract.getWork, { query: { waitMs: 300 } });
    expect(work.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('when a task is created while a worker waits, then the waiting getWork returns it', async () => {
    const waiting = worker.call(masterContract.getWork, { query: { waitMs: 10_000 } });
    await new Promise((r) => setTimeout(r, 100));
    const id = await upload();
    const work = await waiting;
    expect(work.status === 200 && work.body.id).toBe(id);
  });

  it('when a waiting worker hangs up, then a task created afterwards is not handed to it', async () => {
    const hangUp = new AbortController();
    const waiting = worker.call(masterContract.getWork, { query: { waitMs: 10_000 }, signal: hangUp.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 100));
    hangUp.abort();
    expect(await waiting).toBe('aborted');
    await new Promise((r) => setTimeout(r, 50));
    const id = await upload();
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'not_started' });
    const work = await claim();
    expect(work).toMatchObject({ id, attempt: 1 });
  });

  it('when isReady waits and the task finishes meanwhile, then it answers finished at once', async () => {
    const id = await upload();
    const started = Date.now();
    const waiting = master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
    const work = await claim();
    await storage.call(storageContract.put, {
      params: { state: 'finished', key: resultKey(id, 1) },
      body: RESULT,
      contentType: 'image/png',
    });
    await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    expect((await waiting).body).toEqual({ id, state: 'finished' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('when isReady waits and nothing ends, then it answers the current state after waitMs', async () => {
    const id = await upload();
    const started = Date.now();
    const status = await master.call(masterContract.isReady, { query: { id, waitMs: 300 } });
    expect(status.body).toEqual({ id, state: 'not_started' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it.each([
    ['finishes', { state: 'finished' }],
    ['fails', { state: 'failed', error: 'could not decode image/png' }],
  ] as const)(
    'when isReady waits and the task %s through the same master, then it answers without reading taskdb again',
    async (_name, end) => {
      const id = await upload();
      const work = await claim();
      // No recheck during the test: the only wake is the end this master records.
      const counted = await startCountedMaster({ claimRecheckMs: 60_000 });
      try {
        const waiting = counted.master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
        await until(() => counted.images.ended.waiting(id) === 1);
        expect(counted.taskReads(id)).toBe(1);

        if (end.state === 'finished') {
          await storage.call(storageContract.put, {
            params: { state: 'finished', key: resultKey(id, 1) },
            body: RESULT,
            contentType: 'image/png',
          });
          await counted.worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
        } else {
          await counted.worker.call(masterContract.workFailed, { body: { id, leaseToken: work.leaseToken, reason: end.error } });
        }

        expect((await waiting).body).toEqual({ id, ...end });
        // The only other read is workFinished's own, which needs the attempt and the source's size.
        expect(counted.taskReads(id)).toBe(end.state === 'finished' ? 2 : 1);
      } finally {
        await counted.close();
      }
    },
  );

  it('when isReady waits and the task ends through another master, then it re-asks taskdb and answers the end', async () => {
    const id = await upload();
    const work = await claim();
    const counted = await startCountedMaster({ claimRecheckMs: 100 });
    try {
      const waiting = counted.master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
      await until(() => counted.images.ended.waiting(id) === 1);

      await storage.call(storageContract.put, {
        params: { state: 'finished', key: resultKey(id, 1) },
        body: RESULT,
        contentType: 'image/png',
      });
      await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });

      expect((await waiting).body).toEqual({ id, state: 'finished' });
      expect(counted.taskReads(id)).toBeGreaterThanOrEqual(2);
    } finally {
      await counted.close();
    }
  });

  it('when a lease token is stale, then finishing with it is a 409', async () => {
    const id = await upload();
    await claim();
    const done = await worker.call(masterContract.workFailed, { body: { id, leaseToken: randomUUID(), reason: 'x' } });
    expect(done.status).toBe(409);
  });

  it("when a lease is lost, then its attempt's late upload never replaces the result of the attempt that finished", async () => {
    const id = await upload();
    const stale = await claim();
    // The first attempt loses its lease (here: given back); a second attempt takes the task.
    await worker.call(masterContract.workReleased, { body: { id, leaseToken: stale.leaseToken, reason: 'lost' } });
    const current = await claim();
    expect(current.attempt).toBe(2);
    expect(current.resultUrl).not.toBe(stale.resultUrl);
    const put = (url: string, body: Buffer) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
    expect((await put(current.resultUrl, RESULT)).status).toBe(201);
    expect((await worker.call(masterContract.workFinished, { body: { id, leaseToken: current.leaseToken } })).status).toBe(200);

    const junk = pngOf(2, 2, 'stale bytes');
    await put(stale.resultUrl, junk);
    const late = await worker.call(masterContract.workFinished, { body: { id, leaseToken: stale.leaseToken } });
    expect(late.status).toBe(409);
    // The finished attempt's URL cannot overwrite what was checked either.
    expect((await put(current.resultUrl, junk)).status).toBe(409);
    const result = await master.call(masterContract.get, { query: { id } });
    expect(result.body).toEqual(RESULT);
  });

  it("when a lease ends, then its result URL stops opening storage; a heartbeat's new URL lasts as long as the new lease", async () => {
    const shortLeases = new ImageService({
      ...gatewaysOf(taskdb),
      leaseMs: 1_000,
      claimRecheckMs: 200,
      signedUrlTtlMs: 60_000,
    });
    const id = await upload();
    const work = (await shortLeases.nextWork(0))!;
    expect(work.id).toBe(id);
    const expiresOf = (url: string) => Number(new URL(url).searchParams.get('expires'));
    expect(expiresOf(work.resultUrl)).toBe(Date.parse(work.leaseExpiresAt));
    const beat = await shortLeases.heartbeat(id, work.leaseToken);
    expect(expiresOf(beat.resultUrl)).toBe(Date.parse(beat.leaseExpiresAt));

    await new Promise((resolve) => setTimeout(resolve, Date.parse(beat.leaseExpiresAt) - Date.now() + 50));
    for (const url of [work.resultUrl, beat.resultUrl]) {
      const late = await fetch(url, { method: 'POST', body: RESULT, headers: { 'content-type': 'image/png' } });
      expect(late.status).toBe(403);
      expect(ErrorBodySchema.parse(await late.json()).error.message).toMatch(/expired/);
    }
  });

  it.each(
    [
      [
        'bytes of another type',
        Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(12, 1)]),
        /is a image\/jpeg, not a image\/png/,
      ],
      [
        'a header that cannot be read',
        Buffer.concat([PNG.subarray(0, 8), Buffer.from('junk after the signature')]),
        /header cannot be read/,
      ],
      ['another size in pixels', pngOf(3, 2), /3×2 pixels, not the 2×2 that swap-red-blue makes of the 2×2 source/],
      ['more bytes than its pixels can take', pngOf(2, 2, Buffer.alloc(100_000)), /more than \d+ for its pixels/],
    ].flatMap(([name, bytes, message]) => [
      [name, 'read back', bytes, message],
      [name, 'told by a receipt', bytes, message],
    ]) as [string, string, Buffer, RegExp][],
  )('when a result has %s (%s), then workFinished is a 422 and the task is not finished', async (_name, how, bytes, message) => {
    const id = await upload();
    const work = await claim();
    // Stored with the internal token: what master checks does not depend on how the bytes got there.
    const stored = await storage.call(storageContract.put, {
      params: { state: 'finished', key: resultKey(id, work.attempt) },
      body: bytes,
      contentType: 'application/octet-stream',
    });
    expect(stored.status).toBe(201);
    const receipt = how === 'told by a receipt' && stored.status === 201 ? stored.body.receipt : undefined;
    expect(receipt === undefined).toBe(how === 'read back');
    const refused = await send('POST', '/workFinished', JSON.stringify({ id, leaseToken: work.leaseToken, receipt }));
    expect(refused.status).toBe(422);
    expect(ErrorBodySchema.parse(await refused.json()).error.message).toMatch(message);
    expect((await master.call(masterContract.isReady, { query: { id } })).body).toEqual({ id, state: 'in_progress' });
  });

  it("when a result upload has more bytes than the source's pixels can take, then the signed URL refuses it with 413", async () => {
    await upload(pngOf(10, 10));
    const work = await claim();
    const bound = Number(new URL(work.resultUrl).searchParams.get('maxBytes'));
    expect(bound).toBeGreaterThanOrEqual(10 * 10 * 4);
    const post = (body: Buffer) => fetch(work.resultUrl, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
    expect((await post(pngOf(10, 10, Buffer.alloc(bound)))).status).toBe(413);
    // The bound is signed: raising it breaks the signature.
    const raised = new URL(work.resultUrl);
    raised.searchParams.set('maxBytes', String(bound * 100));
    expect((await fetch(raised, { method: 'POST', body: RESULT, headers: { 'content-type': 'image/png' } })).status).toBe(403);
    expect((await post(pngOf(10, 10, 'swapped'))).status).toBe(201);
  });

  it('when an idempotency key comes again with another image or operation, then it is a 422 and nothing is stored', async () => {
    const headers = { 'idempotency-key': `key-${randomUUID()}` };
    const first = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: {}, headers });
    expect(first.status).toBe(202);
    const files = () => fs.readdirSync(path.join(dir, 'storage', 'inProgress')).length;
    const before = files();
    const otherImage = await master.call(masterContract.newImage, { body: RESULT, contentType: 'image/png', query: {}, headers });
    expect(otherImage.status).toBe(422);
    const otherOp = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: { op: 'invert' }, headers });
    expect(otherOp.status === 422 && otherOp.body.error.message).toMatch(
      /Idempotency-Key .* was used before with another image or operation/,
    );
    expect(files()).toBe(before);
  });

  describe('operations that change the size', () => {
    /** Uploads a PNG of width × height with `query`, claims it; answers the work handed out. */
    const uploadAndClaim = async (width: number, height: number, query: Record<string, string>): Promise<Work> => {
      const response = await send('POST', `/newImage?${new URLSearchParams(query).toString()}`, pngOf(width, height), 'image/png');
      expect(response.status).toBe(202);
      return claim();
    };
    /** Gives a refused attempt back, as a worker does, and claims the task's next attempt, which stores its own result. */
    const nextAttempt = async (work: Work): Promise<Work> => {
      await worker.call(masterContract.workReleased, { body: { id: work.id, leaseToken: work.leaseToken, reason: 'result refused' } });
      const next = await claim();
      expect(next).toMatchObject({ id: work.id, attempt: work.attempt + 1 });
      return next;
    };
    /** Stores `result` for the work and reports it finished (with storage's receipt, or to be read back). */
    const finishWith = async (work: Work, result: Buffer, withReceipt: boolean) => {
      const receipt = await uploadResult(work, result);
      return worker.call(masterContract.workFinished, {
        body: { id: work.id, leaseToken: work.leaseToken, ...(withReceipt ? { receipt } : {}) },
      });
    };

    it.each(['rotate-90', 'rotate-270'])(
      'when %s of a non-square image is finished with width and height swapped, then the task is finished; with the source size, 422',
      async (op) => {
        for (const withReceipt of [true, false]) {
          const work = await uploadAndClaim(3, 2, { op });
          expect(work.params).toBeUndefined();
          const unturned = await finishWith(work, pngOf(3, 2, 'not turned'), withReceipt);
          expect(unturned.status === 422 && unturned.body.error.message).toMatch(
            new RegExp(`3×2 pixels, not the 2×3 that ${op} makes of the 3×2 source`),
          );
          expect(await finishWith(await nextAttempt(work), pngOf(2, 3, 'turned'), withReceipt)).toMatchObject({
            status: 200,
            body: { id: work.id, state: 'finished' },
          });
        }
      },
    );

    it('when an image is to be resized, then the work carries the parameters, and only a result of the size asked for finishes', async () => {
      const work = await uploadAndClaim(40, 30, { op: 'resize', width: '20' });
      expect(work).toMatchObject({ op: 'resize', params: { width: 20 } });
      const task = await taskdb.call(taskdbContract.get, { params: { id: work.id } });
      expect(task.body).toMatchObject({ op: 'resize', params: { width: 20 }, width: 40, height: 30 });
      let attempt = work;
      for (const wrong of [pngOf(40, 30), pngOf(20, 20)]) {
        const refused = await finishWith(attempt, wrong, true);
        expect(refused.status === 422 && refused.body.error.message).toMatch(/not the 20×15 that resize makes of the 40×30 source/);
        attempt = await nextAttempt(attempt);
      }
      expect(attempt.params).toEqual({ width: 20 });
      expect(await finishWith(attempt, pngOf(20, 15, 'resized'), true)).toMatchObject({ status: 200, body: { state: 'finished' } });

      const both = await uploadAndClaim(40, 30, { op: 'resize', width: '7', height: '90' });
      expect(both.params).toEqual({ width: 7, height: 90 });
      expect(await finishWith(both, pngOf(7, 90, 'resized'), false)).toMatchObject({ status: 200, body: { state: 'finished' } });
    });

    it("when an image is resized, then its result URL takes no more bytes than the result's pixels can: fewer for a smaller one, more for a larger one", async () => {
      const boundOf = (work: Work) => Number(new URL(work.resultUrl).searchParams.get('maxBytes'));
      const same = boundOf(await uploadAndClaim(100, 100, { op: 'invert' }));
      const smaller = boundOf(await uploadAndClaim(100, 100, { op: 'resize', width: '10' }));
      const larger = await uploadAndClaim(100, 100, { op: 'resize', height: '1000' });
      expect(smaller).toBeLessThan(same);
      expect(boundOf(larger)).toBeGreaterThanOrEqual(1000 * 1000 * 4);
      // A result of the size asked for, with as many bytes as its pixels can take, fits.
      const full = await fetch(larger.resultUrl, {
        method: 'POST',
        body: pngOf(1000, 1000, Buffer.alloc(1000 * 1000 * 4)),
        headers: { 'content-type': 'image/png' },
      });
      expect(full.status).toBe(201);
    });

    it('when an Idempotency-Key comes again with the same image and op but other parameters, then it is a 422; with the same ones, the first task', async () => {
      const headers = { 'idempotency-key': `resize-${randomUUID()}` };
      const image = pngOf(40, 30);
      const newImage = (query: { op: 'resize' | 'invert'; width?: number; height?: number }) =>
        master.call(masterContract.newImage, { body: image, contentType: 'image/png', query, headers });
      const first = await newImage({ op: 'resize', width: 20 });
      expect(first.status).toBe(202);
      const again = await newImage({ op: 'resize', width: 20 });
      expect(again.status === 202 && first.status === 202 && again.body.id === first.body.id).toBe(true);
      for (const other of [{ width: 21 }, { height: 20 }, { width: 20, height: 15 }]) {
        const refused = await newImage({ op: 'resize', ...other });
        expect(refused.status === 422 && refused.body.error.message).toMatch(/used before with another image or operation/);
      }
    });

    it.each([
      ['a width with another operation', 'op=invert&width=10', /query: width goes with op=resize only, not with op=invert/],
      ['a height with the default operation', 'height=10', /query: height goes with op=resize only, not with op=swap-red-blue/],
      ['resize without a side', 'op=resize', /query: op=resize needs width, height or both/],
      ['a side of 0', 'op=resize&width=0', /query\.width: must be a whole number of pixels from 1 to 8192/],
      ['a side past the bound', 'op=resize&height=8193', /query\.height: must be a whole number of pixels from 1 to 8192/],
      ['a fraction', 'op=resize&width=2.5', /query\.width: must be a whole number/],
      [
        'a kept side past the bound',
        'op=resize&width=100',
        /resize to width 100 of an image of 10×1000 pixels makes 100×10000, more than 8192/,
      ],
    ])('when the upload asks for %s, then it is a 400 that says so, and nothing is stored', async (_what, query, message) => {
      const files = () => fs.readdirSync(path.join(dir, 'storage', 'inProgress')).length;
      const before = files();
      const response = await send('POST', `/newImage?${query}`, pngOf(10, 1000), 'image/png');
      expect(response.status).toBe(400);
      expect(ErrorBodySchema.parse(await response.json()).error.message).toMatch(message);
      expect(files()).toBe(before);
      expect((await worker.call(masterContract.getWork, { query: { waitMs: 0 } })).status).toBe(204);
    });
  });

  it("when an owner's stored bytes would pass its quota, then the upload is a 429 and usage says where it stands", async () => {
    const owner = `quota-${randomUUID().slice(0, 8)}`;
    const limited = new ImageService({
      ...gatewaysOf(taskdb),
      leaseMs: 30_000,
      claimRecheckMs: 200,
      signedUrlTtlMs: 60_000,
      quotas: { perKey: PNG.length * 2, anonymous: undefined },
    });
    const app = createApp({
      images: limited,
      admin: new TaskAdmin({ ...gatewaysOf(taskdb), images: limited, retentionMs: RETENTION_MS }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [],
    });
    const other = await listen(app, 0);
    try {
      const limitedMaster = new ContractClient({ service: 'master', baseUrl: other.url });
      const uploadAs = () => limitedMaster.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: { owner } });
      expect((await uploadAs()).status).toBe(202);
      expect((await uploadAs()).status).toBe(202);
      const refused = await uploadAs();
      expect(refused.status).toBe(429);
      expect(refused.status === 429 && refused.body.error).toMatchObject({ code: 'quota_exceeded' });
      const usage = await limitedMaster.call(masterContract.usage, { query: { owner } });
      expect(usage.body).toEqual({ owner, storedBytes: PNG.length * 2, quotaBytes: PNG.length * 2 });
      // Without a cap for clients without a key, they are not limited.
      const anonymous = await limitedMaster.call(masterContract.usage, { query: {} });
      expect(anonymous.status === 200 && anonymous.body.quotaBytes).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('when a dependency is down, then master answers 503 and stays up', async () => {
    const unreachable = gatewaysOf(
      new ContractClient({ service: 'taskdb', baseUrl: 'http://127.0.0.1:9', retries: 0 }),
      new ContractClient({ service: 'storage', baseUrl: 'http://127.0.0.1:9', retries: 0 }),
    );
    const broken = new ImageService({
      ...unreachable,
      leaseMs: 30_000,
      claimRecheckMs: 100,
      signedUrlTtlMs: 60_000,
    });
    const app = createApp({
      images: broken,
      admin: new TaskAdmin({ ...unreachable, images: broken, retentionMs: RETENTION_MS }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: 4096,
      dependencies: [],
    });
    const other = await listen(app, 0);
    try {
      const response = await fetch(`${other.url}/isReady?id=${randomUUID()}`);
      expect(response.status).toBe(503);
      expect(ErrorBodySchema.parse(await response.json()).error.message).toContain('taskdb is unreachable');
      expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  describe('GET /readyz', () => {
    const OTHER_TOKEN = 'another-internal-token-0123456789';

    /** The /readyz answer of a master checking these clients of its dependencies. */
    const readyzWith = async (dependencies: ContractClient[]): Promise<{ status: number; text: string }> => {
      const app = createApp({
        images,
        admin,
        logger: createLogger('master', 'silent'),
        maxUploadBytes: 4096,
        dependencies,
        tokens: { internal: INTERNAL_TOKEN, worker: WORKER_TOKEN },
      });
      const other = await listen(app, 0);
      try {
        const response = await fetch(`${other.url}/readyz`);
        return { status: response.status, text: await response.text() };
      } finally {
        await other.close();
      }
    };

    it('when its own GET /authz is called, then it accepts INTERNAL_TOKEN only, not the worker token', async () => {
      const authz = (token?: string) =>
        fetch(`${server.url}/authz`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
      expect((await authz(INTERNAL_TOKEN)).status).toBe(204);
      expect((await authz(WORKER_TOKEN)).status).toBe(401);
      expect((await authz()).status).toBe(401);
    });

    it('when taskdb and storage accept its token, then it is ready, from one GET /authz to each', async () => {
      expect((await send('GET', '/readyz')).status).toBe(200);

      const proxies = await Promise.all([startCountingProxy(taskdbProcess.url!), startCountingProxy(storageProcess.url!)]);
      try {
        const ready = await readyzWith([
          new ContractClient({ service: 'taskdb', baseUrl: proxies[0].url, token: INTERNAL_TOKEN }),
          new ContractClient({ service: 'storage', baseUrl: proxies[1].url, token: INTERNAL_TOKEN }),
        ]);
        expect(ready.status).toBe(200);
        expect(JSON.parse(ready.text)).toEqual({ status: 'ready', service: 'master', checks: { taskdb: 'ok', storage: 'ok' } });
        for (const proxy of proxies) expect(proxy.requests).toEqual(['GET /authz']);
      } finally {
        await Promise.all(proxies.map((proxy) => proxy.close()));
      }
    });

    it('when storage was started with another INTERNAL_TOKEN, then it is not ready, storage unauthorized, and no token shown', async () => {
      const otherDir = path.join(dir, 'other-token');
      fs.mkdirSync(otherDir, { recursive: true });
      const otherStorage = await startDependency('storage', otherDir, { env: { INTERNAL_TOKEN: OTHER_TOKEN } });
      try {
        const ready = await readyzWith([
          taskdb,
          new ContractClient({ service: 'storage', baseUrl: otherStorage.url!, token: INTERNAL_TOKEN }),
        ]);

        expect(ready.status).toBe(503);
        expect(JSON.parse(ready.text)).toEqual({
          status: 'not_ready',
          service: 'master',
          checks: { taskdb: 'ok', storage: 'unauthorized' },
        });
        expect(ready.text).not.toContain(INTERNAL_TOKEN);
        expect(ready.text).not.toContain(OTHER_TOKEN);
      } finally {
        await otherStorage.stop();
      }
    });

    it('when master holds no token and taskdb requires one, then taskdb is unauthorized', async () => {
      const ready = await readyzWith([new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url! }), storage]);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text)).toMatchObject({ status: 'not_ready', checks: { taskdb: 'unauthorized', storage: 'ok' } });
    });

    it('when taskdb is down, then it is failing', async () => {
      const ready = await readyzWith([new ContractClient({ service: 'taskdb', baseUrl: 'http://127.0.0.1:9', retries: 0 }), storage]);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text)).toMatchObject({ status: 'not_ready', checks: { taskdb: 'failing', storage: 'ok' } });
    });

    it('when storage is older than GET /authz (it answers 404 there), then it counts as reachable and master is ready', async () => {
      const olderStorage = await startCountingProxy(storageProcess.url!, { missingRoutes: ['GET /authz'] });
      try {
        const ready = await readyzWith([
          taskdb,
          new ContractClient({ service: 'storage', baseUrl: olderStorage.url, token: INTERNAL_TOKEN }),
        ]);
        expect(ready.status).toBe(200);
        expect(JSON.parse(ready.text)).toMatchObject({ status: 'ready', checks: { taskdb: 'ok', storage: 'ok' } });
        expect(olderStorage.requests).toEqual(['GET /authz']);
      } finally {
        await olderStorage.close();
      }
    });
  });

  it.each([
    ['an unknown id', 'GET', `/isReady?id=${randomUUID()}`, undefined, undefined, 404, 'not_found'],
    ['an unknown id for get', 'GET', `/get?id=${randomUUID()}`, undefined, undefined, 404, 'not_found'],
    ['a malformed id', 'GET', '/isReady?id=12', undefined, undefined, 400, 'bad_request'],
    ['a missing id', 'GET', '/get', undefined, undefined, 400, 'bad_request'],
    ['a body that is not an image', 'POST', '/newImage', 'hello', 'image/png', 415, 'unsupported_media_type'],
    ['an empty body', 'POST', '/newImage', '', 'image/png', 400, 'bad_request'],
    ['an unknown operation', 'POST', '/newImage?op=melt', PNG, 'image/png', 400, 'bad_request'],
    ['a body over the limit', 'POST', '/newImage', Buffer.concat([PNG, Buffer.alloc(5000)]), 'image/png', 413, 'payload_too_large'],
    ['a wait too long', 'GET', '/getWork?waitMs=999999', undefined, undefined, 400, 'bad_request'],
    ['a status wait too long', 'GET', `/isReady?id=${randomUUID()}&waitMs=40000`, undefined, undefined, 400, 'bad_request'],
    ['a missing lease token', 'POST', '/workFinished', JSON.stringify({ id: randomUUID() }), undefined, 400, 'bad_request'],
    [
      'a malformed receipt',
      'POST',
      '/workFinished',
      JSON.stringify({ id: randomUUID(), leaseToken: randomUUID(), receipt: { state: 'finished', key: 'x', size: -1, signature: '!' } }),
      undefined,
      400,
      'bad_request',
    ],
    [
      'a finished report of an unknown task',
      'POST',
      '/workFinished',
      JSON.stringify({ id: randomUUID(), leaseToken: randomUUID() }),
      undefined,
      404,
      'not_found',
    ],
    [
      'a finish of an unknown task',
      'POST',
      '/workFailed',
      JSON.stringify({ id: randomUUID(), leaseToken: randomUUID(), reason: 'r' }),
      undefined,
      404,
      'not_found',
    ],
    ['malformed JSON', 'POST', '/heartbeat', '{', undefined, 400, 'bad_request'],
    ['a wrong method', 'DELETE', '/newImage', undefined, undefined, 405, 'method_not_allowed'],
  ])('when a request has %s, then it is refused with a JSON error', async (_n, method, urlPath, body, type, status, code) => {
    const response = await send(method, urlPath, body, type);
    expect(response.status).toBe(status);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe(code);
    expect((await send('GET', '/healthz')).status).toBe(200);
  });

  it('when uploads are refused, then nothing is left in storage or taskdb', async () => {
    const before = await taskdb.call(taskdbContract.list, { query: { state: 'not_started' } });
    await send('POST', '/newImage', 'hello', 'image/png');
    await send('POST', '/newImage?op=melt', PNG, 'image/png');
    const after = await taskdb.call(taskdbContract.list, { query: { state: 'not_started' } });
    expect(after.body).toEqual(before.body);
    expect(fs.readdirSync(path.join(dir, 'storage', 'inProgress')).length).toBe(
      (
        await Promise.all(
          ['not_started', 'in_progress', 'finished', 'failed'].map((state) =>
            taskdb.call(taskdbContract.list, { query: { state: state as 'failed', limit: 1000 } }),
          ),
        )
      ).reduce((n, page) => n + (page.status === 200 ? page.body.ids.length : 0), 0),
    );
  });

  /** Uploads `count` images and finishes each task; answers their ids. */
  const finishedTasks = async (count: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      ids.push(await upload());
      const work = await claim();
      const receipt = await uploadResult(work);
      await worker.call(masterContract.workFinished, { body: { id: work.id, leaseToken: work.leaseToken, receipt } });
    }
    return ids;
  };
  const sourceStored = (id: string) => fs.existsSync(path.join(dir, 'storage', 'inProgress', id));

  it('when a sweep finds finished tasks, then storage gets one POST /deletions for all their sources and no DELETE, and the sources are gone', async () => {
    const ids = await finishedTasks(5);
    const counted = await startCountedMaster();
    try {
      const swept = await counted.housekeeper().sweep();

      expect(swept.sourcesDeleted).toBeGreaterThanOrEqual(ids.length);
      expect(counted.storageRequests).toEqual(['POST /deletions']);
      expect(ids.filter(sourceStored)).toEqual([]);
    } finally {
      await counted.close();
    }
  });

  it('when storage has no POST /deletions (an older storage), then the sweep deletes one by one, and asks no more after the first 404', async () => {
    const counted = await startCountedMaster({ olderStorage: true });
    try {
      const housekeeper = counted.housekeeper();
      const first = await finishedTasks(3);
      await housekeeper.sweep();
      expect(counted.storageRequests[0]).toBe('POST /deletions');
      expect(counted.storageRequests.slice(1)).toEqual(expect.arrayContaining(first.map((id) => `DELETE /objects/inProgress/${id}`)));
      expect(first.filter(sourceStored)).toEqual([]);

      counted.storageRequests.length = 0;
      const second = await finishedTasks(3);
      await housekeeper.sweep();
      expect(counted.storageRequests.sort()).toEqual(second.map((id) => `DELETE /objects/inProgress/${id}`).sort());
      expect(second.filter(sourceStored)).toEqual([]);
    } finally {
      await counted.close();
    }
  });

  it('when housekeeping runs, then finished tasks lose their source, failed ones keep it, and past the retention everything goes and reads answer 410', async () => {
    const id = await upload();
    const work = await claim();
    await fetch(work.resultUrl, { method: 'POST', body: RESULT, headers: { 'content-type': 'image/png' } });
    await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken } });
    const failed = await upload();
    const failedWork = await claim();
    await worker.call(masterContract.workFailed, { body: { id: failed, leaseToken: failedWork.leaseToken, reason: 'could not decode' } });
    const exists = (state: string, key: string) => fs.existsSync(path.join(dir, 'storage', state, key));
    let now = Date.now();
    const housekeeper = new Housekeeper({
      ...gatewaysOf(taskdb),
      logger: createLogger('master', 'silent'),
      retentionMs: 3_600_000,
      batchSize: 2,
      // Room for the tasks the earlier tests ended: every batch of 2 is swept in one run.
      maxBatches: 1000,
      now: () => now,
    });

    const first = await housekeeper.sweep();
    expect(first.sourcesDeleted).toBeGreaterThanOrEqual(1);
    expect(first.expired).toBe(0);
    expect(exists('inProgress', id)).toBe(false);
    expect(exists('finished', resultKey(id, 1))).toBe(true);
    expect((await master.call(masterContract.get, { query: { id } })).status).toBe(200);
    // Kept for an operator's retry until the task expires.
    expect(exists('inProgress', failed)).toBe(true);

    now += 2 * 3_600_000;
    const second = await housekeeper.sweep();
    expect(second.expired).toBeGreaterThanOrEqual(1);
    expect(exists('finished', resultKey(id, 1))).toBe(false);
    expect(exists('inProgress', failed)).toBe(false);
    const status = await send('GET', `/isReady?id=${id}`);
    expect(status.status).toBe(410);
    expect(ErrorBodySchema.parse(await status.json()).error).toMatchObject({ code: 'gone', message: expect.stringMatching(/expired/) });
    expect((await send('GET', `/get?id=${id}`)).status).toBe(410);
  });
});
