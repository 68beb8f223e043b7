import { randomUUID } from 'node:crypto';
import { taskdbContract } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import { scrapeMetrics } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import type { TaskRepository } from '../../src/data-access/task-repository';
import { TaskService } from '../../src/domain/task-service';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/test-databases';

const TOKEN = 'internal-token-0123456789';

describe.each(BACKENDS)('taskdb metrics on %s', (backend) => {
  let database: TestDatabase;
  let repository: TaskRepository;
  let server: Listening;
  let client: ContractClient;
  let tasks: TaskService;
  let now: number;

  /** Backoff before retry n is half its ceiling with random() = 0: 500 ms after the first attempt. */
  const POLICY = { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };

  beforeEach(async () => {
    now = Date.parse('2026-01-01T00:00:00Z');
    database = await createTestDatabase(backend);
    repository = await database.open();
    tasks = new TaskService(repository, { ...POLICY, now: () => now, random: () => 0 });
    const app = createApp({ tasks, logger: createLogger('taskdb', 'silent'), ping: () => repository.ping(), tokens: { internal: TOKEN } });
    server = await listen(app, 0);
    client = new ContractClient({ service: 'taskdb', baseUrl: server.url, token: TOKEN });
  });

  afterEach(async () => {
    await server.close();
    await database.drop();
  });

  const create = async (): Promise<string> => {
    const id = randomUUID();
    const result = await client.call(taskdbContract.create, { body: { id, op: 'swap-red-blue', contentType: 'image/png' } });
    expect(result.status).toBe(201);
    return id;
  };
  const claim = async (leaseMs = 30_000) => {
    const result = await client.call(taskdbContract.claim, { body: { leaseMs } });
    expect(result.status).toBe(200);
    return result.status === 200 ? result.body : (undefined as never);
  };
  const end = async (id: string, leaseToken: string, to: 'finished' | 'failed') => {
    const result = await client.call(taskdbContract.changeState, { params: { id }, body: { to, leaseToken, error: 'bad pixels' } });
    expect(result).toMatchObject({ status: 200, body: { state: to } });
  };
  const scrape = async () => {
    const metrics = await scrapeMetrics(server.url, TOKEN);
    expect(metrics.status).toBe(200);
    return metrics;
  };
  const byState = (metrics: Awaited<ReturnType<typeof scrape>>) =>
    Object.fromEntries(
      ['not_started', 'in_progress', 'finished', 'failed'].map((state) => [state, metrics.value('pixelmill_tasks', { state })]),
    );

  it('when no task is kept, then both open states show 0, and so does the wait', async () => {
    const metrics = await scrape();
    expect(byState(metrics)).toEqual({ not_started: 0, in_progress: 0 });
    expect(metrics.value('pixelmill_oldest_waiting_task_age_seconds')).toBe(0);
    expect(metrics.text).toContain('# HELP pixelmill_tasks ');
    expect(metrics.text).toContain('# HELP pixelmill_oldest_waiting_task_age_seconds ');
  });

  it('when tasks are in every state, then the gauges count those waiting and running, and the wait is the oldest waiting task’s', async () => {
    const [running, finished, failed] = [await create(), await create(), await create()];
    await create(); // waits from the start
    now += 5_000;
    await create(); // waits 5 s less
    expect((await claim()).id).toBe(running);
    const toFinish = await claim();
    expect(toFinish.id).toBe(finished);
    await end(finished, toFinish.leaseToken, 'finished');
    const toFail = await claim();
    expect(toFail.id).toBe(failed);
    await end(failed, toFail.leaseToken, 'failed');
    now += 60_000;

    const metrics = await scrape();
    // Ended tasks are master's to count, as they end.
    expect(byState(metrics)).toEqual({ not_started: 2, in_progress: 1 });
    expect(metrics.value('pixelmill_oldest_waiting_task_age_seconds')).toBe(65);
  });

  it('when leases run out, then the reaper counts each: retried, then failed on the last attempt; a task in its backoff does not wait yet', async () => {
    const id = await create();
    const before = await scrape();
    expect(before.value('pixelmill_lease_expiries_total', { outcome: 'retried' })).toBe(0);
    expect(before.value('pixelmill_lease_expiries_total', { outcome: 'failed' })).toBe(0);

    await claim(10_000);
    now += 10_001;
    expect(await tasks.reapExpired()).toBe(1);
    const retried = await scrape();
    expect(retried.value('pixelmill_lease_expiries_total', { outcome: 'retried' })).toBe(1);
    // Back in the queue, but not claimable for another 500 ms.
    expect(byState(retried)).toEqual({ not_started: 1, in_progress: 0 });
    expect(retried.value('pixelmill_oldest_waiting_task_age_seconds')).toBe(0);

    now += 2_500;
    expect((await scrape()).value('pixelmill_oldest_waiting_task_age_seconds')).toBe(2);
    expect((await claim(10_000)).id).toBe(id);
    now += 10_001;
    expect(await tasks.reapExpired()).toBe(1);
    const failed = await scrape();
    expect(failed.value('pixelmill_lease_expiries_total', { outcome: 'retried' })).toBe(1);
    expect(failed.value('pixelmill_lease_expiries_total', { outcome: 'failed' })).toBe(1);
    expect(byState(failed)).toEqual({ not_started: 0, in_progress: 0 });
  });

  it('when its routes are called, then they are counted by pattern, not by task id; /metrics needs the token', async () => {
    const id = await create();
    expect((await client.call(taskdbContract.get, { params: { id } })).status).toBe(200);
    const metrics = await scrape();
    expect(metrics.value('http_requests_total', { method: 'GET', route: '/tasks/:id', status: '200' })).toBe(1);
    expect(metrics.value('http_requests_total', { method: 'POST', route: '/tasks', status: '201' })).toBe(1);
    expect(metrics.text).not.toContain(id);
    expect((await scrapeMetrics(server.url)).status).toBe(401);
  });
});
