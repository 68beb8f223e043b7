import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { masterAdminContract, masterContract, StoredObjectSchema, type Work } from '@pixelmill/contracts';
import { ContractClient, createLogger, deriveSigningKey, listen, type Listening } from '@pixelmill/kit';
import { scrapeMetrics, type ServiceProcess } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { ImageService } from '../../src/domain/image-service';
import { TaskAdmin } from '../../src/domain/task-admin';
import { INTERNAL_TOKEN, pngOf, startDependency } from './fixtures';

const PNG = pngOf(2, 2);
const WORKER_TOKEN = 'worker-token-0123456789ab';

/** master's /metrics, with the built taskdb and storage running as their own processes. */
describe('master metrics', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let server: Listening;
  let master: ContractClient;
  let worker: ContractClient;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-metrics-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    const taskdb = new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN });
    const storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    const gateways = {
      tasks: new TaskGateway(taskdb),
      store: new ImageStoreGateway(storage, { publicUrl: async () => storageProcess.url!, signingKey: deriveSigningKey(INTERNAL_TOKEN) }),
    };
    const images = new ImageService({
      ...gateways,
      leaseMs: 30_000,
      claimRecheckMs: 200,
      signedUrlTtlMs: 60_000,
    });
    const app = createApp({
      images,
      admin: new TaskAdmin({ ...gateways, images, retentionMs: 3_600_000 }),
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

  /** Fails the work earlier tests left, so that each test claims its own tasks. */
  beforeEach(async () => {
    for (;;) {
      const work = await worker.call(masterContract.getWork, { query: { waitMs: 0 } });
      if (work.status !== 200) return;
      await worker.call(masterContract.workFailed, { body: { id: work.body.id, leaseToken: work.body.leaseToken, reason: 'drained' } });
    }
  });

  const upload = async (): Promise<string> => {
    const result = await master.call(masterContract.newImage, { body: PNG, contentType: 'image/png' });
    expect(result.status).toBe(202);
    return result.status === 202 ? result.body.id : '';
  };
  const claim = async (): Promise<Work> => {
    const work = await worker.call(masterContract.getWork, { query: { waitMs: 0 } });
    expect(work.status).toBe(200);
    return (work as { body: Work }).body;
  };
  /** master's figures, as Prometheus reads them with the internal token. */
  const scrape = async () => {
    const metrics = await scrapeMetrics(server.url, INTERNAL_TOKEN);
    expect(metrics.status).toBe(200);
    const counter = (name: string) => metrics.value(name) ?? 0;
    return {
      metrics,
      created: counter('pixelmill_tasks_created_total'),
      claims: counter('pixelmill_task_claims_total'),
      finished: counter('pixelmill_tasks_finished_total'),
      failed: counter('pixelmill_tasks_failed_total'),
      released: counter('pixelmill_task_releases_total'),
      attempts: counter('pixelmill_task_attempts_count'),
      firstAttempts: metrics.value('pixelmill_task_attempts_bucket', { le: '1' }) ?? 0,
    };
  };

  it('when an image is uploaded, claimed and finished, then each counter moves by one, and its one attempt is observed', async () => {
    const before = await scrape();
    const id = await upload();
    const work = await claim();
    expect(work.id).toBe(id);
    const put = await fetch(work.resultUrl, { method: 'POST', body: pngOf(2, 2, 'swapped'), headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(201);
    const { receipt } = StoredObjectSchema.parse(await put.json());
    const done = await worker.call(masterContract.workFinished, { body: { id, leaseToken: work.leaseToken, receipt } });
    expect(done).toMatchObject({ status: 200, body: { state: 'finished' } });

    const after = await scrape();
    expect(after.created - before.created).toBe(1);
    expect(after.claims - before.claims).toBe(1);
    expect(after.finished - before.finished).toBe(1);
    expect(after.failed - before.failed).toBe(0);
    expect(after.attempts - before.attempts).toBe(1);
    expect(after.firstAttempts - before.firstAttempts).toBe(1);
    expect(after.metrics.text).toContain('# HELP pixelmill_tasks_created_total ');
    expect(after.metrics.value('http_requests_total', { method: 'POST', route: '/newImage', status: '202' })).toBeGreaterThanOrEqual(1);
    expect(after.metrics.value('http_requests_total', { method: 'GET', route: '/getWork', status: '200' })).toBeGreaterThanOrEqual(1);
  });

  it('when an upload is sent again with its Idempotency-Key, then no second task is counted', async () => {
    const before = await scrape();
    const headers = { 'idempotency-key': `metrics-${randomUUID()}` };
    const send = () => master.call(masterContract.newImage, { body: PNG, contentType: 'image/png', headers });
    const [first, again] = [await send(), await send()];
    expect(first.status).toBe(202);
    expect(again).toMatchObject({ status: 202, body: { id: first.status === 202 ? first.body.id : '' } });
    expect((await scrape()).created - before.created).toBe(1);
  });

  it('when an attempt fails, or is given back, then failures and releases are counted', async () => {
    const before = await scrape();
    const id = await upload();
    const given = await claim();
    const back = await worker.call(masterContract.workReleased, { body: { id, leaseToken: given.leaseToken, reason: 'shutting down' } });
    expect(back).toMatchObject({ status: 200, body: { state: 'not_started' } });
    const again = await claim();
    expect(again).toMatchObject({ id, attempt: 2 });
    const failed = await worker.call(masterContract.workFailed, { body: { id, leaseToken: again.leaseToken, reason: 'not an image' } });
    expect(failed).toMatchObject({ status: 200, body: { state: 'failed' } });

    const after = await scrape();
    expect(after.claims - before.claims).toBe(2);
    expect(after.released - before.released).toBe(1);
    expect(after.failed - before.failed).toBe(1);
    expect(after.finished - before.finished).toBe(0);
    // Ended on its second attempt: above the first bucket.
    expect(after.attempts - before.attempts).toBe(1);
    expect(after.firstAttempts - before.firstAttempts).toBe(0);
  });

  it('when operators retry, cancel and delete tasks, then each action is counted by its name; a refused one is not', async () => {
    const before = await scrapeMetrics(server.url, INTERNAL_TOKEN);
    const actions = (metrics: typeof before) =>
      Object.fromEntries(
        ['retry', 'cancel', 'delete'].map((action) => [action, metrics.value('pixelmill_master_admin_actions_total', { action })]),
      );
    // Shown from the start, at 0, so that a rate over them has a first value.
    expect(actions(before)).toEqual({ retry: expect.any(Number), cancel: expect.any(Number), delete: expect.any(Number) });

    const failed = await upload();
    const work = await claim();
    await worker.call(masterContract.workFailed, { body: { id: failed, leaseToken: work.leaseToken, reason: 'not an image' } });
    expect((await master.call(masterAdminContract.retryTask, { params: { id: failed } })).status).toBe(200);
    expect((await master.call(masterAdminContract.retryTask, { params: { id: failed } })).status).toBe(409);
    expect((await master.call(masterAdminContract.cancelTask, { params: { id: failed } })).status).toBe(200);
    expect((await master.call(masterAdminContract.deleteTask, { params: { id: failed } })).status).toBe(204);
    expect((await master.call(masterAdminContract.deleteTask, { params: { id: failed } })).status).toBe(404);

    const after = actions(await scrapeMetrics(server.url, INTERNAL_TOKEN));
    const was = actions(before);
    expect({ retry: after.retry! - was.retry!, cancel: after.cancel! - was.cancel!, delete: after.delete! - was.delete! }).toEqual({
      retry: 1,
      cancel: 1,
      delete: 1,
    });
  });

  it("when /metrics is asked without the internal token, or with a worker's, then it is a 401", async () => {
    expect((await scrapeMetrics(server.url)).status).toBe(401);
    expect((await scrapeMetrics(server.url, WORKER_TOKEN)).status).toBe(401);
  });

  it("when taskdb and storage count master's calls, then their routes are patterns, not the ids in the URLs", async () => {
    const id = await upload();
    const work = await claim();
    await worker.call(masterContract.workFailed, { body: { id, leaseToken: work.leaseToken, reason: 'counted' } });
    const [taskdb, storage] = await Promise.all([
      scrapeMetrics(taskdbProcess.url!, INTERNAL_TOKEN),
      scrapeMetrics(storageProcess.url!, INTERNAL_TOKEN),
    ]);
    expect(taskdb.sum('http_requests_total', { method: 'POST', route: '/tasks/:id/state' })).toBeGreaterThanOrEqual(1);
    expect(storage.sum('http_requests_total', { method: 'POST', route: '/objects/:state/:key' })).toBeGreaterThanOrEqual(1);
    for (const metrics of [taskdb, storage]) {
      expect(metrics.text).not.toContain(id);
      const routes = new Set(metrics.samples.filter((s) => s.name === 'http_requests_total').map((s) => s.labels.route));
      for (const route of routes) expect(route).toMatch(/^(\/[\w:]*)+$|^\(unmatched\)$/);
    }
  });
});
