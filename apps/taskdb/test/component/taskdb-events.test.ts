import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ErrorBodySchema, taskdbContract, type TaskEvents } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import { openPostgres, type Pool } from '@pixelmill/kit/postgres';
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { payloadsOf, PostgresEventBus, taskEventsChannel } from '../../src/data-access/postgres-event-bus';
import { SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import { TaskEventHub, type TaskEventPublisher } from '../../src/domain/task-events';
import { TaskService } from '../../src/domain/task-service';

/** Backoff before retry n is half its ceiling with random() = 0. */
const POLICY = { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };
const logger = createLogger('taskdb', 'silent');

interface Instance {
  url: string;
  client: ContractClient;
  tasks: TaskService;
  close(): Promise<void>;
}

/** One taskdb over HTTP: its own SQLite file, its events going to `publisher` and answered from `hub`. */
async function startInstance(dir: string, hub: TaskEventHub, publisher: TaskEventPublisher, now = Date.now): Promise<Instance> {
  const repository = new SqliteTaskRepository(path.join(dir, `${randomUUID()}.sqlite`));
  const tasks = new TaskService(repository, { ...POLICY, now, random: () => 0, events: publisher });
  const server: Listening = await listen(createApp({ tasks, events: hub, logger, ping: () => repository.ping() }), 0);
  return {
    url: server.url,
    client: new ContractClient({ service: 'taskdb', baseUrl: server.url, retries: 0 }),
    tasks,
    close: async () => {
      await server.close();
      await repository.close();
    },
  };
}

const poll = async (instance: Instance, after?: string, waitMs = 0): Promise<TaskEvents> => {
  const answer = await instance.client.call(taskdbContract.events, { query: { after, waitMs } });
  if (answer.status !== 200) throw new Error(`events answered ${answer.status}`);
  return answer.body;
};
const create = async (instance: Instance): Promise<string> => {
  const id = randomUUID();
  const result = await instance.client.call(taskdbContract.create, { body: { id, op: 'invert', contentType: 'image/png' } });
  expect(result.status).toBe(201);
  return id;
};

/** Waits until `check` holds; fails the test rather than hang when it never does. */
const until = async (check: () => boolean, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`still not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-events-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('taskdb events, one instance', () => {
  let taskdb: Instance;
  let hub: TaskEventHub;
  let now: number;
  beforeEach(async () => {
    now = Date.parse('2026-01-01T00:00:00Z');
    hub = new TaskEventHub();
    taskdb = await startInstance(dir, hub, hub, () => now);
  });
  afterEach(() => taskdb.close());

  it('when a task is created, then a waiting poll is answered with it; a repeated create adds nothing', async () => {
    const { cursor } = await poll(taskdb);
    const waiting = poll(taskdb, cursor, 20_000);
    const id = await create(taskdb);

    const answer = await waiting;
    expect(answer).toMatchObject({ events: [{ kind: 'created', id }], reset: false });
    await taskdb.client.call(taskdbContract.create, { body: { id, op: 'invert', contentType: 'image/png' } });
    expect((await poll(taskdb, answer.cursor)).events).toEqual([]);
  });

  it('when tasks end finished or failed, then each ends once in the events; a release is no end', async () => {
    const finished = await create(taskdb);
    const failed = await create(taskdb);
    const { cursor } = await poll(taskdb);
    const first = (await taskdb.tasks.claim(30_000))!;
    const second = (await taskdb.tasks.claim(30_000))!;
    await taskdb.tasks.changeState(finished, { to: 'not_started', leaseToken: first.leaseToken, error: 'shutting down' });
    now += 1_000;
    const again = (await taskdb.tasks.claim(30_000))!;
    await taskdb.tasks.changeState(finished, { to: 'finished', leaseToken: again.leaseToken });
    await taskdb.tasks.changeState(finished, { to: 'finished', leaseToken: again.leaseToken });
    await taskdb.tasks.changeState(failed, { to: 'failed', leaseToken: second.leaseToken, error: 'cannot decode' });

    expect((await poll(taskdb, cursor)).events).toEqual([
      { kind: 'ended', id: finished, state: 'finished', error: null },
      { kind: 'ended', id: failed, state: 'failed', error: 'cannot decode' },
    ]);
  });

  it('when the last lease of a task expires, then its failure is in the events', async () => {
    const id = await create(taskdb);
    const { cursor } = await poll(taskdb);
    for (let attempt = 1; attempt <= POLICY.maxAttempts; attempt += 1) {
      expect((await taskdb.tasks.claim(5_000))?.attempt).toBe(attempt);
      now += 10_000;
      expect(await taskdb.tasks.reapExpired()).toBe(1);
      // Past the backoff before the retry.
      now += 1_000;
    }

    expect((await poll(taskdb, cursor)).events).toEqual([
      { kind: 'ended', id, state: 'failed', error: expect.stringContaining(`gave up after ${POLICY.maxAttempts} attempts`) },
    ]);
  });

  it('when taskdb shuts down, then a waiting poll is answered 503 at once and its connection closed, so masters go elsewhere', async () => {
    const { cursor } = await poll(taskdb);
    const waiting = fetch(`${taskdb.url}/events?after=${cursor}&waitMs=20000`);
    await until(() => hub.waiting === 1);

    hub.close();

    const answer = await waiting;
    expect(answer.status).toBe(503);
    expect(answer.headers.get('connection')).toBe('close');
    expect(ErrorBodySchema.parse(await answer.json()).error.code).toBe('unavailable');
  });
});

describe('taskdb events, two instances on one PostgreSQL schema', () => {
  let schema: TestSchema;
  let pools: Pool[];
  let buses: PostgresEventBus[];
  let instances: Instance[];

  const startOnPostgres = async (): Promise<Instance> => {
    const pool = await openPostgres({ url: schema.url, schema: schema.schema, poolSize: 2 });
    pools.push(pool);
    const hub = new TaskEventHub();
    const bus = new PostgresEventBus({
      url: schema.url,
      schema: schema.schema,
      pool,
      hub,
      logger,
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    await bus.start();
    buses.push(bus);
    const instance = await startInstance(dir, hub, bus);
    instances.push(instance);
    return instance;
  };

  beforeAll(async () => {
    schema = await createTestSchema('taskdb_events');
  });
  afterAll(() => schema.drop());
  beforeEach(() => {
    pools = [];
    buses = [];
    instances = [];
  });
  afterEach(async () => {
    await Promise.all(instances.map((instance) => instance.close()));
    await Promise.all(buses.map((bus) => bus.stop()));
    await Promise.all(pools.map((pool) => pool.end()));
  });

  it('when a task is created through A, then a poll waiting on B is answered with it, and A hears it too', async () => {
    const [a, b] = [await startOnPostgres(), await startOnPostgres()];
    const [fromA, fromB] = [await poll(a), await poll(b)];
    const waitingOnB = poll(b, fromB.cursor, 20_000);

    const id = await create(a);

    expect(await waitingOnB).toMatchObject({ events: [{ kind: 'created', id }], reset: false });
    expect(await poll(a, fromA.cursor, 20_000)).toMatchObject({ events: [{ kind: 'created', id }], reset: false });
  });

  it("when B's listening connection drops, then B's poll is answered reset once it listens again, and hears A again", async () => {
    const [a, b] = [await startOnPostgres(), await startOnPostgres()];
    const { cursor } = await poll(b);
    const waiting = poll(b, cursor, 20_000);
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      // Both listeners' connections: which one is B's does not matter, each must come back.
      const dropped = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1', [
        `LISTEN ${taskEventsChannel(schema.schema)}`,
      ]);
      expect(dropped.rowCount).toBe(2);
    } finally {
      await admin.end();
    }

    const reset = await waiting;
    expect(reset).toMatchObject({ events: [], reset: true });
    const id = await create(a);
    expect(await poll(b, reset.cursor, 20_000)).toMatchObject({ events: [{ kind: 'created', id }], reset: false });
  });

  it('when many events are published at once, then they travel in few notifications and B hears each once, in order', async () => {
    // A's bus sends, B hears.
    const [, b] = [await startOnPostgres(), await startOnPostgres()];
    const { cursor } = await poll(b);
    // Long errors, so the batch needs several notifications of under 8000 bytes each.
    const sent = Array.from({ length: 300 }, (_, n) => ({
      kind: 'ended' as const,
      id: randomUUID(),
      state: 'failed' as const,
      error: `reason ${n} `.padEnd(100, '.'),
    }));
    expect(payloadsOf(sent).length).toBeGreaterThan(1);
    const listener = new Client({ connectionString: TEST_DATABASE_URL });
    await listener.connect();
    let notifications = 0;
    listener.on('notification', () => (notifications += 1));
    await listener.query(`LISTEN ${taskEventsChannel(schema.schema)}`);
    for (const event of sent) buses[0]!.publish(event);

    const heard: unknown[] = [];
    let after = cursor;
    while (heard.length < sent.length) {
      const answer = await poll(b, after, 20_000);
      expect(answer.reset).toBe(false);
      heard.push(...answer.events);
      after = answer.cursor;
    }
    expect(heard).toEqual(sent);
    await listener.end();
    expect(notifications).toBeGreaterThan(1);
    expect(notifications).toBeLessThan(sent.length / 10);
  });

  it('when an event is too large for a notification, then the pollers of every instance are answered reset instead', async () => {
    const [, b] = [await startOnPostgres(), await startOnPostgres()];
    const { cursor } = await poll(b);
    const waiting = poll(b, cursor, 20_000);

    // Each control character takes 6 bytes in JSON: far past the 8000 bytes NOTIFY takes.
    buses[0]!.publish({ kind: 'ended', id: randomUUID(), state: 'failed', error: '\u0001'.repeat(2000) });

    expect(await waiting).toMatchObject({ events: [], reset: true });
  });
});
