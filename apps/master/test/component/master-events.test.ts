import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { masterAdminContract, masterContract, resultKey, storageContract, type TaskStatus } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import type { ServiceProcess } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskEventFeed, type TaskEventHandlers } from '../../src/data-access/task-events';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { ImageService } from '../../src/domain/image-service';
import { TaskAdmin } from '../../src/domain/task-admin';
import { startCountingProxy } from './counting-proxy';
import { INTERNAL_TOKEN, pngOf, startDependency, until } from './fixtures';

const WORKER_TOKEN = 'worker-token-0123456789ab';
/** Longer than any wake in these tests may take: what wakes a waiting call here is taskdb's event, not the recheck. */
const CLAIM_RECHECK_MS = 10_000;
const PNG = pngOf(2, 2);
const RESULT = pngOf(2, 2, 'swapped pixels');
const logger = createLogger('master', 'silent');

interface Master {
  images: ImageService;
  feed: TaskEventFeed;
  master: ContractClient;
  worker: ContractClient;
  close(): Promise<void>;
}

/** Two masters over one taskdb (SQLite) and one storage, each following taskdb's events. */
describe('master wake-ups across instances', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let storage: ContractClient;
  let a: Master;
  let b: Master;

  const startMaster = async (): Promise<Master> => {
    const taskdb = new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN });
    const gateways = {
      tasks: new TaskGateway(taskdb),
      store: new ImageStoreGateway(storage, { publicUrl: async () => storageProcess.url! }),
    };
    const images = new ImageService({
      ...gateways,
      leaseMs: 30_000,
      claimRecheckMs: CLAIM_RECHECK_MS,
      signedUrlTtlMs: 60_000,
    });
    const feed = new TaskEventFeed({ resolve: async () => taskdbProcess.url!, token: INTERNAL_TOKEN, handlers: images, logger });
    feed.start();
    const server: Listening = await listen(
      createApp({
        images,
        admin: new TaskAdmin({ ...gateways, images, retentionMs: 3_600_000 }),
        logger,
        maxUploadBytes: 4096,
        dependencies: [],
        tokens: { internal: INTERNAL_TOKEN, worker: WORKER_TOKEN },
      }),
      0,
    );
    return {
      images,
      feed,
      master: new ContractClient({ service: 'master', baseUrl: server.url, token: INTERNAL_TOKEN }),
      worker: new ContractClient({ service: 'master', baseUrl: server.url, token: WORKER_TOKEN }),
      close: async () => {
        await server.close();
        await feed.stop();
      },
    };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-events-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    [a, b] = await Promise.all([startMaster(), startMaster()]);
    // A feed hears what comes after its first answer: before that, it has no place to start from.
    await until(() => a.feed.following && b.feed.following);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all([taskdbProcess?.stop(), storageProcess?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const upload = async (through: Master): Promise<string> => {
    const accepted = await through.master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', query: {} });
    if (accepted.status !== 202) throw new Error(`newImage answered ${accepted.status}`);
    return accepted.body.id;
  };

  it('when an image is uploaded through master A, then a getWork waiting on master B is answered with it before any recheck', async () => {
    const waiting = b.worker.call(masterContract.getWork, { query: { waitMs: 20_000 } });
    await until(() => b.images.signal.waiting() === 1);

    const uploaded = Date.now();
    const id = await upload(a);

    const work = await waiting;
    expect(work.status === 200 && work.body.id).toBe(id);
    expect(Date.now() - uploaded).toBeLessThan(CLAIM_RECHECK_MS);
  });

  it.each([
    ['finishes', { state: 'finished' }],
    ['fails', { state: 'failed', error: 'could not decode image/png' }],
  ] as const)(
    'when a task %s through master A, then an isReady waiting on master B answers its end before any recheck',
    async (_name, end) => {
      const id = await upload(a);
      const work = await a.worker.call(masterContract.getWork, { query: { waitMs: 0 } });
      if (work.status !== 200) throw new Error(`getWork answered ${work.status}`);
      const waiting = b.master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
      await until(() => b.images.ended.waiting(id) === 1);

      const ending = Date.now();
      if (end.state === 'finished') {
        await storage.call(storageContract.put, {
          params: { state: 'finished', key: resultKey(id, 1) },
          body: RESULT,
          contentType: 'image/png',
        });
        expect((await a.worker.call(masterContract.workFinished, { body: { id, leaseToken: work.body.leaseToken } })).status).toBe(200);
      } else {
        const failed = await a.worker.call(masterContract.workFailed, {
          body: { id, leaseToken: work.body.leaseToken, reason: end.error },
        });
        expect(failed.status).toBe(200);
      }

      expect((await waiting).body).toEqual({ id, ...end });
      expect(Date.now() - ending).toBeLessThan(CLAIM_RECHECK_MS);
    },
  );

  it('when a waiting task is cancelled through master A, then an isReady waiting on master B answers it failed, cancelled, before any recheck', async () => {
    const id = await upload(a);
    const waiting = b.master.call(masterContract.isReady, { query: { id, waitMs: 20_000 } });
    await until(() => b.images.ended.waiting(id) === 1);

    const cancelling = Date.now();
    expect((await a.master.call(masterAdminContract.cancelTask, { params: { id } })).status).toBe(200);

    expect((await waiting).body).toEqual({ id, state: 'failed', error: 'cancelled by an operator' });
    expect(Date.now() - cancelling).toBeLessThan(CLAIM_RECHECK_MS);
  });

  it('when a failed task is retried through master A, then a getWork waiting on master B is answered with it before any recheck', async () => {
    const id = await upload(a);
    const work = await a.worker.call(masterContract.getWork, { query: { waitMs: 0 } });
    if (work.status !== 200) throw new Error(`getWork answered ${work.status}`);
    await a.worker.call(masterContract.workFailed, { body: { id, leaseToken: work.body.leaseToken, reason: 'a passing fault' } });
    const waiting = b.worker.call(masterContract.getWork, { query: { waitMs: 20_000 } });
    await until(() => b.images.signal.waiting() === 1);

    const retrying = Date.now();
    expect((await a.master.call(masterAdminContract.retryTask, { params: { id } })).status).toBe(200);

    const again = await waiting;
    expect(again.status === 200 && again.body).toMatchObject({ id, attempt: 2 });
    expect(Date.now() - retrying).toBeLessThan(CLAIM_RECHECK_MS);
  });

  describe('a waiting isReady for a task created through it', () => {
    let proxy: Awaited<ReturnType<typeof startCountingProxy>>;

    beforeEach(async () => {
      proxy = await startCountingProxy(taskdbProcess.url!);
    });
    afterEach(() => proxy.close());

    /** A master over the counted taskdb and the real storage, whose feed is said to follow or not. */
    const countedService = (followsTaskEvents = true) =>
      new ImageService({
        tasks: new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: proxy.url, token: INTERNAL_TOKEN })),
        store: new ImageStoreGateway(storage, { publicUrl: async () => storageProcess.url! }),
        leaseMs: 30_000,
        claimRecheckMs: CLAIM_RECHECK_MS,
        signedUrlTtlMs: 60_000,
        followsTaskEvents: () => followsTaskEvents,
      });
    const acceptThrough = async (images: ImageService, owner?: string) =>
      (await images.accept({ stream: Readable.from([PNG]), length: PNG.length, limit: 4096 }, { op: 'invert', owner })).id;
    const readsOf = (id: string) => proxy.requests.filter((request) => request === `GET /tasks/${id}`).length;

    it("when its task was created through this master and taskdb's events reach it, then it waits without reading the task: the end wakes it", async () => {
      const images = countedService();
      const id = await acceptThrough(images);

      const waiting = images.status(id, undefined, 20_000);
      await until(() => images.ended.waiting(id) === 1);
      // The end as the feed tells it (through another master, say).
      images.taskEnded({ id, state: 'finished' });

      expect(await waiting).toEqual({ id, state: 'finished' });
      expect(readsOf(id)).toBe(0);
    });

    it('when its task was created here but news may have been lost since, or the events do not reach master, then it reads the task first', async () => {
      const missed = countedService();
      const first = await acceptThrough(missed);
      missed.tasksMissed();
      const unfollowed = countedService(false);
      const second = await acceptThrough(unfollowed);

      const waits = [missed.status(first, undefined, 20_000), unfollowed.status(second, undefined, 20_000)];
      await until(() => missed.ended.waiting(first) === 1 && unfollowed.ended.waiting(second) === 1);

      expect([readsOf(first), readsOf(second)]).toEqual([1, 1]);
      missed.taskEnded({ id: first, state: 'finished' });
      unfollowed.taskEnded({ id: second, state: 'finished' });
      await Promise.all(waits);
    });

    it('when another owner asks for a task created here, then taskdb is read and the task is as unknown as a missing one', async () => {
      const images = countedService();
      const id = await acceptThrough(images, 'owner-a');

      await expect(images.status(id, 'owner-b', 20_000)).rejects.toMatchObject({ status: 404 });
      expect(readsOf(id)).toBe(1);
    });
  });
});

/** A feed over a taskdb that restarts: what it heard, in order. */
describe('task event feed', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let port: number;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-feed-'));
    taskdbProcess = await startDependency('taskdb', dir);
    port = Number(new URL(taskdbProcess.url!).port);
  }, 30_000);

  afterAll(async () => {
    await taskdbProcess?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when taskdb restarts, then the feed tells that news may have been missed, and follows the new instance', async () => {
    const heard: Array<string | TaskStatus> = [];
    const handlers: TaskEventHandlers = {
      taskCreated: () => heard.push('created'),
      taskEnded: (status) => heard.push(status),
      tasksMissed: () => heard.push('missed'),
    };
    const feed = new TaskEventFeed({
      resolve: async () => taskdbProcess.url!,
      token: INTERNAL_TOKEN,
      handlers,
      logger,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    feed.start();
    try {
      await until(() => feed.following);

      await taskdbProcess.stop();
      taskdbProcess = await startDependency('taskdb', dir, { port });

      await until(() => heard.length > 0);
      expect(heard).toEqual(['missed']);
      const tasks = new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN }));
      await tasks.create({ id: '00000000-0000-4000-8000-000000000001', op: 'invert', contentType: 'image/png', sourceBytes: 0 });
      await until(() => heard.length > 1);
      expect(heard).toEqual(['missed', 'created']);
    } finally {
      await feed.stop();
    }
  });

  it('when news comes in a burst, then the feed gathers it into a few polls instead of one per event', async () => {
    const proxy = await startCountingProxy(taskdbProcess.url!);
    let created = 0;
    const feed = new TaskEventFeed({
      resolve: async () => proxy.url,
      token: INTERNAL_TOKEN,
      handlers: { taskCreated: () => (created += 1), taskEnded: () => undefined, tasksMissed: () => undefined },
      logger,
      gatherMs: 1_000,
    });
    feed.start();
    try {
      await until(() => feed.following);
      const tasks = new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN }));
      const ids = Array.from({ length: 20 }, (_, i) => `00000000-0000-4000-8000-${String(100 + i).padStart(12, '0')}`);
      // One at a time, each answered before the next: without gathering, each would end a poll of its own.
      for (const id of ids) {
        await tasks.create({ id, op: 'invert', contentType: 'image/png', sourceBytes: 0 });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await until(() => created === ids.length);

      const polls = proxy.requests.filter((request) => request.startsWith('GET /events'));
      // The first poll (no cursor), the one the first event ends, and the one after the gathering.
      expect(polls.length).toBeLessThanOrEqual(4);
    } finally {
      await feed.stop();
      await proxy.close();
    }
  });

  describe('a waiting isReady', () => {
    const TASK = '00000000-0000-4000-8000-000000000200';
    const RECHECK_MS = 100;
    let proxy: Awaited<ReturnType<typeof startCountingProxy>>;

    beforeAll(async () => {
      const tasks = new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN }));
      await tasks.create({ id: TASK, op: 'invert', contentType: 'image/png', sourceBytes: 0 });
    });
    beforeEach(async () => {
      proxy = await startCountingProxy(taskdbProcess.url!);
    });
    afterEach(() => proxy.close());

    /** The reads of TASK an isReady waiting 1.5 s made, with or without taskdb's events reaching master. */
    const readsWhileWaiting = async (followsTaskEvents: boolean): Promise<number> => {
      const images = new ImageService({
        tasks: new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: proxy.url, token: INTERNAL_TOKEN })),
        // Never called by isReady.
        store: new ImageStoreGateway(new ContractClient({ service: 'storage', baseUrl: 'http://127.0.0.1:9' }), {
          publicUrl: async () => 'http://127.0.0.1:9',
        }),
        leaseMs: 30_000,
        claimRecheckMs: RECHECK_MS,
        signedUrlTtlMs: 60_000,
        followsTaskEvents: () => followsTaskEvents,
      });
      const status = await images.status(TASK, undefined, 1_500);
      expect(status.state).toBe('not_started');
      return proxy.requests.filter((request) => request === `GET /tasks/${TASK}`).length;
    };

    it("when taskdb's events reach master, then it does not ask taskdb again every recheck: its end will wake it", async () => {
      // The first read, and the one when its wait is over.
      expect(await readsWhileWaiting(true)).toBeLessThanOrEqual(2);
    });

    it('when they do not, then it asks taskdb again every recheck', async () => {
      expect(await readsWhileWaiting(false)).toBeGreaterThanOrEqual(8);
    });
  });

  it('when the feed stops, then the poll under way ends at once', async () => {
    const feed = new TaskEventFeed({
      resolve: async () => taskdbProcess.url!,
      token: INTERNAL_TOKEN,
      handlers: { taskCreated: () => undefined, taskEnded: () => undefined, tasksMissed: () => undefined },
      logger,
      waitMs: 30_000,
    });
    feed.start();
    await until(() => feed.following);

    // Within jest's timeout, which a poll of 30 s waited out would pass.
    await feed.stop();
  });
});
