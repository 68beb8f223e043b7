import { randomUUID } from 'node:crypto';
import { ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, listen, type Listening, type Logger } from '@pixelmill/kit';
import { createTestSchema, type TestSchema } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { TaskdbConfigSchema } from '../../src/config';
import { openTaskRepository } from '../../src/data-access/open-task-repository';
import { PostgresTaskRepository } from '../../src/data-access/postgres-task-repository';
import { LeaseReaper } from '../../src/domain/lease-reaper';
import { TaskService } from '../../src/domain/task-service';
import { startTcpProxy, type TcpProxy } from '@pixelmill/kit/testing';

/** PostgreSQL out of reach for a while (a proxy the test cuts), then back. */
describe('taskdb when PostgreSQL is out of reach', () => {
  const POLICY = { maxAttempts: 3, attemptTimeoutMs: 120_000, retryBaseMs: 0, retryMaxMs: 0 };
  let schema: TestSchema;
  let proxy: TcpProxy;
  let repository: PostgresTaskRepository;
  let tasks: TaskService;
  let server: Listening;
  let now: number;
  let proxiedUrl: string;

  beforeEach(async () => {
    now = Date.now();
    schema = await createTestSchema('taskdb_down');
    const target = new URL(schema.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    target.port = String(proxy.port);
    proxiedUrl = target.toString();
    repository = await PostgresTaskRepository.open({ url: proxiedUrl, schema: schema.schema, poolSize: 2, connectTimeoutMs: 1_000 });
    tasks = new TaskService(repository, { ...POLICY, now: () => now });
    server = await listen(createApp({ tasks, logger: createLogger('taskdb', 'silent'), ping: () => repository.ping() }), 0);
  });

  afterEach(async () => {
    await server.close();
    await repository.close();
    await proxy.close();
    await schema.drop();
  });

  const send = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const create = (id = randomUUID()) => send('POST', '/tasks', { id, op: 'invert', contentType: 'image/png' });

  /** Polls `probe` until it is true; a busy machine may take its time to reconnect. */
  const eventually = async (probe: () => Promise<boolean>) => {
    for (let tries = 0; tries < 300; tries += 1) {
      if (await probe()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('never happened');
  };

  it('when the database cannot be reached, then every route answers 503 unavailable, health stays up, and all recovers when it is back', async () => {
    const id = randomUUID();
    expect((await create(id)).status).toBe(201);
    await proxy.cut();

    const requests: Array<[string, string, unknown?]> = [
      ['POST', '/tasks', { id: randomUUID(), op: 'invert', contentType: 'image/png' }],
      ['GET', `/tasks/${id}`],
      ['POST', `/tasks/${id}/state`, { to: 'failed' }],
      ['GET', '/tasks?state=not_started'],
      ['GET', '/tasks?state=failed&view=tasks'],
      ['POST', `/tasks/${id}/retry`, {}],
      ['POST', `/tasks/${id}/cancel`, {}],
      ['DELETE', `/tasks/${id}`],
      ['POST', '/claims', { leaseMs: 30_000 }],
      ['POST', `/tasks/${id}/lease`, { leaseToken: randomUUID(), leaseMs: 30_000 }],
      ['GET', '/usage'],
      ['GET', `/housekeeping?expireBefore=${new Date().toISOString()}`],
      ['POST', '/housekeeping', { sourcesDeleted: [id], expired: [] }],
    ];
    for (const [method, path, body] of requests) {
      const response = await send(method, path, body);
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 503 });
      expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('unavailable');
    }
    expect((await send('GET', '/readyz')).status).toBe(503);
    expect((await send('GET', '/healthz')).status).toBe(200);

    await proxy.restore();
    await eventually(async () => (await send('GET', '/readyz')).status === 200);
    const claimed = await send('POST', '/claims', { leaseMs: 30_000 });
    expect(claimed.status).toBe(200);
    expect(((await claimed.json()) as { id: string }).id).toBe(id);
    expect((await create()).status).toBe(201);
  });

  it('when the database is out of reach, then the reaper says so once, keeps trying, and reaps by itself once it is back', async () => {
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (message: string) => warnings.push(message),
      error: () => undefined,
    } as unknown as Logger;
    expect((await create()).status).toBe(201);
    const held = await tasks.claim(5_000);
    const turns = jest.spyOn(tasks, 'reapExpired');
    const reaper = new LeaseReaper(tasks, logger, 100);
    await proxy.cut();
    reaper.start();
    try {
      now += 5_000;
      await eventually(async () => turns.mock.calls.length >= 5);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/could not reap expired leases: the task database is out of reach/);
      await proxy.restore();
      await eventually(async () => {
        const response = await send('GET', `/tasks/${held!.id}`);
        return response.status === 200 && ((await response.json()) as { state: string }).state === 'not_started';
      });
    } finally {
      await reaper.stop();
    }
    expect(warnings).toHaveLength(1);
  });

  it('when the database is out of reach at start, then taskdb waits for it, saying so, and opens once it is back', async () => {
    await proxy.cut();
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message) } as unknown as Logger;
    const config = TaskdbConfigSchema.parse({ DATABASE_URL: proxiedUrl, DATABASE_SCHEMA: schema.schema, DATABASE_POOL_SIZE: '1' });
    const opening = openTaskRepository(config, logger);
    await eventually(async () => warnings.length >= 2);
    expect(warnings[0]).toMatch(/PostgreSQL is out of reach .*; trying again in \d+ ms/);
    await proxy.restore();
    const opened = await opening;
    try {
      expect(await opened.listByState('not_started', 0, 10)).toEqual([]);
    } finally {
      await opened.close();
    }
  });
});
