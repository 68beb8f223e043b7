import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { createTestSchema, type TestSchema } from '@pixelmill/kit/testing';
import { POSTGRES_TASK_SQL, PostgresTaskRepository } from '../../src/data-access/postgres-task-repository';
import { SQLITE_TASK_SQL, SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';

/**
 * The hot path's queries read an index, whatever the table holds: here finished tasks, a mass
 * release (tasks waiting out a backoff, ready later than the few ready now) and leases in hand.
 */
const FINISHED = 5_000;
const WAITING = 5_000;
const LEASED = 200;
const READY = 10;
const NOW = Date.parse('2026-01-01T00:00:00Z');
const ID = randomUUID();
const TOKEN = randomUUID();

describe('query plans on PostgreSQL', () => {
  let schema: TestSchema;
  let client: Client;

  beforeAll(async () => {
    schema = await createTestSchema('taskdb_plans');
    await (await PostgresTaskRepository.open({ url: schema.url, schema: schema.schema, poolSize: 1 })).close();
    client = new Client({ connectionString: schema.url, options: `-c search_path=${schema.schema}` });
    await client.connect();
    const insert = (state: string, count: number, availableAt: string, lease = 'NULL') =>
      client.query(
        `INSERT INTO tasks (id, op, content_type, state, attempt, available_at, created_at, updated_at, lease_token, lease_expires_at)
         SELECT gen_random_uuid()::text, 'invert', 'image/png', '${state}', 1, ${availableAt}, $1, $1, ${lease === 'NULL' ? 'NULL' : 'gen_random_uuid()::text'}, ${lease}
         FROM generate_series(1, ${count}) AS g`,
        [NOW - 60_000],
      );
    await insert('finished', FINISHED, '0');
    await insert('not_started', WAITING, `${NOW + 60_000} + g`);
    await insert('in_progress', LEASED, '0', `${NOW + 30_000} + g`);
    await insert('not_started', READY, `${NOW - 100} + g`);
    await client.query(`INSERT INTO tasks (id, op, content_type, state, attempt, available_at, created_at, updated_at, lease_token, lease_expires_at)
      VALUES ('${ID}', 'invert', 'image/png', 'in_progress', 1, 0, ${NOW}, ${NOW}, '${TOKEN}', ${NOW + 30_000})`);
    await client.query(`INSERT INTO task_leases (task_id, attempt, lease_token, granted_at, expires_at, ended_at, outcome)
      SELECT id, attempt, coalesce(lease_token, gen_random_uuid()::text), created_at, created_at + 30000,
        CASE WHEN state = 'in_progress' THEN NULL ELSE updated_at END, CASE WHEN state = 'finished' THEN 'finished' END
      FROM tasks WHERE state <> 'not_started'`);
    await client.query(`INSERT INTO owner_usage (owner, shard, stored_bytes)
      SELECT CASE WHEN o = 0 THEN '' ELSE 'owner-' || o END, s, 1000 FROM generate_series(0, 999) AS o, generate_series(0, 15) AS s`);
  });

  afterAll(async () => {
    await client?.end();
    await schema?.drop();
  });

  const plan = async (statement: { text: string }, values: unknown[]): Promise<string> => {
    await client.query('BEGIN');
    try {
      const result = await client.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN (COSTS OFF) ${statement.text}`, values });
      return result.rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await client.query('ROLLBACK');
    }
  };
  const SQL = POSTGRES_TASK_SQL;
  const HOT_PATH: Array<[string, () => Promise<string>, RegExp]> = [
    [
      'claim',
      () => plan(SQL.claim, [NOW, randomUUID(), NOW + 30_000, NOW + 120_000]),
      /Index Scan using tasks_claimable on tasks\s+Index Cond: \(available_at <= /,
    ],
    ['get by id', () => plan(SQL.get, [ID]), /Index Scan using tasks_id_key/],
    ['get for a change', () => plan(SQL.getForUpdate, [ID]), /Index Scan using tasks_id_key/],
    [
      'change state',
      () =>
        plan(SQL.update, [
          ID,
          'finished',
          1,
          null,
          TOKEN,
          null,
          null,
          0,
          0,
          null,
          NOW,
          'in_progress',
          1,
          TOKEN,
          NOW + 30_000,
          'finished',
          false,
          0,
        ]),
      /Index Scan using tasks_id_key[\s\S]*Index Scan using task_leases_pkey/,
    ],
    [
      'create under a quota',
      () => plan(SQL.insert, [randomUUID(), 'invert', 'image/png', null, null, null, 100, null, null, NOW, 1e12, null]),
      /Index Scan using owner_usage_pkey/,
    ],
    [
      'end of an attempt by its holder',
      () => plan(SQL.endAttempt, [ID, TOKEN, 'finished', null, 100, NOW]),
      /Index Scan using tasks_id_key[\s\S]*Index Scan using task_leases_pkey/,
    ],
    ['usage', () => plan(SQL.usage, ['owner-7']), /Index Scan (using|on) owner_usage_pkey/],
    [
      'list by state, first page',
      () => plan(SQL.listByState, ['not_started', 0, 101]),
      /Index Scan using tasks_by_state on tasks\s+Index Cond: \(\(ROW\(state, seq\) >/,
    ],
    ['list by state, deep page', () => plan(SQL.listByState, ['finished', FINISHED - 100, 101]), /Index Scan using tasks_by_state/],
    [
      'list of whole tasks by state',
      () => plan(SQL.listTasksByState, ['finished', 100, 101]),
      /Index Scan using tasks_by_state on tasks\s+Index Cond: \(\(ROW\(state, seq\) >/,
    ],
    ['reaper look', () => plan(SQL.anyLeaseExpired, [NOW]), /Index Only Scan using tasks_by_lease/],
    ['idempotency key', () => plan(SQL.byIdempotencyKey, ['', 'key']), /Index Scan using tasks_by_idempotency_key/],
  ];

  const REAPER: Array<[string, () => Promise<string>, RegExp]> = [
    ['reaper', () => plan(SQL.expired, [NOW + 30_050, 100]), /Index Scan (using|on) tasks_by_lease/],
  ];

  describe.each([
    ['without statistics', async () => undefined],
    ['after ANALYZE', async () => client.query('ANALYZE')],
  ])('%s', (_name, prepare) => {
    beforeAll(prepare);

    it.each(HOT_PATH)(
      'when the %s is planned, then it reads an index, with no scan of the table and no sort',
      async (_n, explain, index) => {
        const text = await explain();
        expect(text).toMatch(index);
        expect(text).not.toMatch(/Seq Scan|Sort/);
      },
    );

    // The oldest waiting task is the claimable index's first entry. How the open states are counted is the planner's
    // choice: here half the tasks are open, and reading the table is cheaper; among a million ended tasks it reads
    // tasks_by_state (a few ms for a thousand open tasks, where counting every task took 0.7 s).
    it('when the counts of /metrics are planned, then the oldest waiting task is the claimable index’s first entry, and nothing is sorted', async () => {
      const text = await plan(SQL.counts, []);
      expect(text).toMatch(/Limit\s+->\s+Index (Only )?Scan using tasks_claimable/);
      expect(text).not.toMatch(/Sort/);
    });

    // Failed tasks keep their source until they expire: the sources to delete (finished tasks') are read off the
    // partial index of ended tasks with a source (sorted, without statistics), never through every finished task.
    it('when the sources to delete are planned, then they read the partial index of ended tasks with a source alone', async () => {
      const text = await plan(SQL.sourcesToDelete, [100]);
      expect(text).toMatch(/Index Scan on tasks_with_source_to_delete|Index Scan using tasks_with_source_to_delete/);
      expect(text).not.toMatch(/Seq Scan|tasks_by_state/);
    });

    // The expired leases are sorted by expiry: each is given back anyway, so the work stays in proportion.
    it.each(REAPER)('when the %s is planned, then it reads the expired leases alone, by an index', async (_n, explain, index) => {
      const text = await explain();
      expect(text).toMatch(index);
      expect(text).not.toMatch(/Seq Scan on tasks/);
    });
  });
});

describe('query plans on SQLite', () => {
  let dir: string;
  let db: Database.Database;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-plans-'));
    const file = path.join(dir, 'tasks.sqlite');
    await new SqliteTaskRepository(file).close();
    db = new Database(file);
    const insert = db.prepare(
      `INSERT INTO tasks (id, op, content_type, state, attempt, available_at, created_at, updated_at, lease_token, lease_expires_at)
       VALUES (?, 'invert', 'image/png', ?, 1, ?, ?, ?, ?, ?)`,
    );
    db.transaction(() => {
      for (let i = 0; i < FINISHED; i += 1) insert.run(randomUUID(), 'finished', 0, NOW, NOW, null, null);
      for (let i = 0; i < WAITING; i += 1) insert.run(randomUUID(), 'not_started', NOW + 60_000 + i, NOW, NOW, null, null);
      for (let i = 0; i < LEASED; i += 1) insert.run(randomUUID(), 'in_progress', 0, NOW, NOW, randomUUID(), NOW + 30_000 + i);
      for (let i = 0; i < READY; i += 1) insert.run(randomUUID(), 'not_started', NOW - 100 + i, NOW, NOW, null, null);
    })();
  });

  afterAll(() => {
    db?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** EXPLAIN QUERY PLAN of a statement, its parameters all null (the plan does not depend on them). */
  const plan = (text: string): string => {
    const named = [...new Set(text.match(/@\w+/g) ?? [])].map((name) => name.slice(1));
    const args =
      named.length > 0 ? [Object.fromEntries(named.map((name) => [name, null]))] : Array<null>(text.split('?').length - 1).fill(null);
    return db
      .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${text}`)
      .all(...args)
      .map((row) => row.detail)
      .join('\n');
  };
  const SQL = SQLITE_TASK_SQL;
  const HOT_PATH: Array<[string, string, RegExp]> = [
    ['claim', SQL.claim, /SEARCH tasks USING (COVERING )?INDEX tasks_claimable \(available_at<\?\)/],
    ['get by id', SQL.get, /SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 \(id=\?\)/],
    ['change state', SQL.update, /SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 \(id=\?\)/],
    ['lease end', SQL.endLease, /SEARCH task_leases USING PRIMARY KEY/],
    ['list by state', SQL.listByState, /SEARCH tasks USING INDEX tasks_by_state \(state=\? AND seq>\?\)/],
    ['list of whole tasks by state', SQL.listTasksByState, /SEARCH tasks USING INDEX tasks_by_state \(state=\? AND seq>\?\)/],
    ['reaper', SQL.expired, /SEARCH tasks USING INDEX tasks_by_lease \(state=\? AND lease_expires_at<\?\)/],
    ['idempotency key', SQL.byIdempotencyKey, /SEARCH tasks USING INDEX tasks_by_idempotency_key/],
  ];

  describe.each([
    ['without statistics', () => undefined],
    ['after ANALYZE', () => db.exec('ANALYZE')],
  ])('%s', (_name, prepare) => {
    beforeAll(prepare);

    it('when the counts of /metrics are planned, then they search indexes only, not the ended tasks, and sort nothing', () => {
      const detail = plan(SQL.counts);
      expect(detail).toMatch(/SEARCH tasks USING COVERING INDEX tasks_by_state \(state=\?\)/);
      expect(detail).toMatch(/SCAN tasks USING COVERING INDEX tasks_claimable/);
      expect(detail).not.toMatch(/TEMP B-TREE/);
    });

    // The partial index holds the ended tasks whose source is kept: walked in seq order, no other task is read.
    it('when the sources to delete are planned, then they are read off their partial index in seq order, with no sort', () => {
      const detail = plan(SQL.sourcesToDelete);
      expect(detail).toBe('SCAN tasks USING INDEX tasks_with_source_to_delete');
    });

    it.each(HOT_PATH)('when the %s is planned, then it searches an index, with no scan of the table and no sort', (_n, text, index) => {
      const detail = plan(text);
      expect(detail).toMatch(index);
      expect(detail).not.toMatch(/SCAN tasks|TEMP B-TREE/);
    });
  });
});
