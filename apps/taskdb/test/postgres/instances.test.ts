import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createTestSchema } from '@pixelmill/kit/testing';
import { POSTGRES_TASK_MIGRATIONS, PostgresTaskRepository } from '../../src/data-access/postgres-task-repository';
import type { TaskRepository } from '../../src/data-access/task-repository';
import { TaskService } from '../../src/domain/task-service';
import { createTestDatabase, type TestDatabase } from '../support/test-databases';

/** Two taskdb instances on one PostgreSQL schema: two services, each on a pool of its own. */
describe('several taskdb instances on one PostgreSQL', () => {
  const POLICY = { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };
  let database: TestDatabase;
  let repositories: TaskRepository[];
  let instances: TaskService[];
  let now: number;

  beforeEach(async () => {
    now = Date.parse('2026-01-01T00:00:00Z');
    database = await createTestDatabase('postgres', 8);
    repositories = [await database.open(), await database.open()];
    instances = repositories.map((repository) => new TaskService(repository, { ...POLICY, now: () => now, random: () => 0 }));
  });

  afterEach(async () => {
    await database.drop();
  });

  const createMany = async (count: number): Promise<string[]> => {
    const ids = Array.from({ length: count }, () => randomUUID());
    for (let i = 0; i < count; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map((id, j) => instances[j % 2]!.create({ id, op: 'invert', contentType: 'image/png', sourceBytes: 0 })),
      );
    }
    return ids;
  };

  it('when 16 claimers on two instances race over 200 tasks, then each task is handed out once, with one lease', async () => {
    const ids = await createMany(200);
    const claimed: string[] = [];
    const claimer = async (tasks: TaskService) => {
      for (let claim = await tasks.claim(30_000); claim; claim = await tasks.claim(30_000)) claimed.push(claim.id);
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => claimer(instances[i % 2]!)));
    expect(claimed).toHaveLength(200);
    expect([...claimed].sort()).toEqual([...ids].sort());
    const leases = await Promise.all(ids.map((id) => repositories[0]!.leases(id)));
    expect(leases.every((held) => held.length === 1 && held[0]!.attempt === 1 && held[0]!.endedAt === null)).toBe(true);
  });

  it('when two instances reap the same expired leases at once, then each task is given back once, one lease lost each', async () => {
    const ids = await createMany(60);
    for (let i = 0; i < ids.length; i += 1) await instances[i % 2]!.claim(5_000);
    now += 5_000;
    const reaped = await Promise.all([
      instances[0]!.reapExpired(),
      instances[1]!.reapExpired(),
      instances[0]!.reapExpired(),
      instances[1]!.reapExpired(),
    ]);
    expect(reaped.reduce((a, b) => a + b, 0)).toBe(60);
    for (const id of ids) {
      // A second give-back would have counted a second lost attempt: the task would have failed (2 allowed).
      expect(await instances[0]!.get(id)).toMatchObject({ state: 'not_started', attempt: 1 });
      expect((await repositories[1]!.leases(id)).map((lease) => lease.outcome)).toEqual(['lost']);
    }
  });

  it('when creates and finishes of one owner race on two instances, then its stored bytes add up, and its quota holds', async () => {
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        instances[i % 2]!.create({ id: randomUUID(), op: 'invert', contentType: 'image/png', owner: 'dave', sourceBytes: 100 }),
      ),
    );
    const finishing = created.map(async (_, i) => {
      const held = await instances[i % 2]!.claim(30_000);
      await instances[(i + 1) % 2]!.changeState(held!.id, { to: 'finished', leaseToken: held!.leaseToken, resultBytes: 10 });
    });
    // Under a quota of 10,000 with 4,000 stored, and up to 400 more as the finishes land: room for 12 or 11 more of 500.
    const gated = Array.from({ length: 16 }, (_, i) =>
      instances[i % 2]!.create({
        id: randomUUID(),
        op: 'invert',
        contentType: 'image/png',
        owner: 'dave',
        sourceBytes: 500,
        quotaBytes: 10_000,
      }),
    );
    const [admitted] = await Promise.all([Promise.allSettled(gated), Promise.all(finishing)]);
    const accepted = admitted.filter((result) => result.status === 'fulfilled').length;
    expect((await instances[0]!.usage('dave')).storedBytes).toBe(40 * 110 + accepted * 500);
    expect([11, 12]).toContain(accepted);
  });

  it('when two instances start on a new schema at once, then both start and the tables are made once', async () => {
    const schema = await createTestSchema('taskdb_start');
    const opened: TaskRepository[] = [];
    try {
      const options = { url: schema.url, schema: schema.schema, poolSize: 2 };
      opened.push(...(await Promise.all([PostgresTaskRepository.open(options), PostgresTaskRepository.open(options)])));
      const tasks = new TaskService(opened[0]!, POLICY);
      const { task } = await tasks.create({ id: randomUUID(), op: 'invert', contentType: 'image/png', sourceBytes: 0 });
      expect(await new TaskService(opened[1]!, POLICY).get(task.id)).toEqual(task);
      const client = new Client({ connectionString: schema.url });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT version FROM ${schema.schema}.taskdb_migrations ORDER BY version`);
        expect(rows).toEqual(POSTGRES_TASK_MIGRATIONS.map((_migration, index) => ({ version: index + 1 })));
      } finally {
        await client.end();
      }
    } finally {
      await Promise.all(opened.map((repository) => repository.close()));
      await schema.drop();
    }
  });
});
