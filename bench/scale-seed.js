// The databases of the scale benchmark: taskdb's tables filled directly by SQL (a million rows in
// seconds, where the API would take an hour), in SQLite or in a PostgreSQL schema of its own.
//
// What a seeded row holds is written once, in `taskRow` and `leaseRows`: the columns inserted are
// their keys, so a change to the tasks table is one edit there, for both engines.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { OPERATIONS } = require('@pixelmill/contracts');
const { untilDone } = require('./scale-services');

/** Seeded tasks were created over the last five days, oldest first (within the 7-day retention). */
const HISTORY_MS = 5 * 24 * 3600_000;
/** In-progress leases and retry backoffs end long after any measurement does. */
const FAR_AHEAD_MS = 3600_000;
/** One ended task in this many failed. */
const FAILED_EVERY = 33;
/** Every this many tasks came with an API key, an Idempotency-Key and a fingerprint. */
const KEYED_EVERY = 4;
/** Rows per INSERT … SELECT FROM unnest(…) in PostgreSQL: its insert path, not this, sets the pace (about 40,000 rows/s here). */
const PG_BATCH_ROWS = 10_000;

/** A bijective 32-bit mix (murmur3's finalizer): consecutive rows get ids far apart, as random ids are. */
function scatter(i) {
  let h = i >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const hex = (n, width) => n.toString(16).padStart(width, '0');

/** The id of seeded row i: a UUID v4 in form, scattered like random ones, and computable from i. */
const seededTaskId = (i) => `${hex(scatter(i), 8)}-5ca1-4000-8000-${hex(i, 12)}`;

/** The lease token of attempt `attempt` of seeded row i. */
const seededLeaseToken = (i, attempt = 1) => `${hex(scatter(i ^ (0x2545f491 * attempt)), 8)}-1ea5-4000-8000-${hex(i, 12)}`;

/**
 * What the seeded rows are, oldest first: `ended` (finished, one in FAILED_EVERY failed),
 * `in_progress` (held, the lease far ahead), `not_started` (claimable now), `backoff`
 * (not_started, waiting out a retry backoff that ends far ahead).
 * @typedef {'ended' | 'in_progress' | 'not_started' | 'backoff'} SeedKind
 * @typedef {{ kind: SeedKind, count: number }} SeedSegment
 */

/** The row of tasks for seeded row i: the one place that knows the tasks table's columns. */
function taskRow(i, kind, createdAt, now) {
  const failed = kind === 'ended' && i % FAILED_EVERY === 0;
  const state = kind === 'ended' ? (failed ? 'failed' : 'finished') : kind === 'backoff' ? 'not_started' : kind;
  const ended = kind === 'ended';
  const held = kind === 'in_progress';
  const keyed = i % KEYED_EVERY === 0;
  return {
    id: seededTaskId(i),
    op: OPERATIONS[i % OPERATIONS.length],
    content_type: 'image/png',
    state,
    attempt: failed ? 3 : kind === 'not_started' ? 0 : 1,
    error: failed
      ? 'gave up after 3 attempts: the lease of attempt 3 expired (worker gone or too slow)'
      : kind === 'backoff'
        ? 'the lease of attempt 1 expired (worker gone or too slow)'
        : null,
    owner: keyed ? `key-${i % 50}` : null,
    idempotency_key: keyed ? `upload-${i}` : null,
    fingerprint: keyed ? hex(scatter(i), 8).repeat(8) : null,
    lease_token: state === 'finished' || held ? seededLeaseToken(i) : null,
    lease_expires_at: held ? now + FAR_AHEAD_MS : null,
    attempt_deadline: held ? now + FAR_AHEAD_MS : null,
    lost_attempts: failed ? 3 : kind === 'backoff' ? 1 : 0,
    available_at: kind === 'backoff' ? now + FAR_AHEAD_MS + (i % 1000) : createdAt,
    created_at: createdAt,
    updated_at: ended ? createdAt + 2_000 : createdAt,
    source_bytes: 350_000,
    result_bytes: state === 'finished' ? 340_000 : null,
    width: 512,
    height: 512,
    source_deleted: ended ? 1 : 0,
    expired_at: null,
  };
}

/** The rows of task_leases for a seeded task: one per attempt it had (the table once taskdb records leases). */
function leaseRows(i, task) {
  return Array.from({ length: task.attempt }, (_, a) => {
    const attempt = a + 1;
    const grantedAt = task.created_at + 100 + a * 60_000;
    const open = task.state === 'in_progress';
    return {
      task_id: task.id,
      attempt,
      lease_token: seededLeaseToken(i, attempt),
      granted_at: grantedAt,
      expires_at: open ? task.lease_expires_at : grantedAt + 60_000,
      ended_at: open ? null : task.state === 'finished' ? task.updated_at : grantedAt + 60_000,
      outcome: open ? null : task.state === 'finished' ? 'finished' : 'lost',
    };
  });
}

const TASK_COLUMNS = Object.keys(taskRow(0, 'ended', 0, 0));
const LEASE_COLUMNS = Object.keys(leaseRows(0, taskRow(0, 'ended', 0, 0))[0]);

/** Every seeded row, oldest first: the task and its leases. */
function* seededRows(segments, now) {
  const total = segments.reduce((sum, s) => sum + s.count, 0);
  let i = 0;
  for (const { kind, count } of segments) {
    for (let k = 0; k < count; k++, i++) {
      const createdAt = Math.round(now - HISTORY_MS * (1 - i / total));
      const task = taskRow(i, kind, createdAt, now);
      yield { task, leases: leaseRows(i, task) };
    }
  }
}

/**
 * How the tasks of a queue of `total` are spread, oldest first: mostly ended (finished, a few
 * failed), then up to 1,000 in progress and up to 2,000 waiting (fewer in a small table: 10 % and
 * 30 % of it, so a table of 1,000 still has 300 to claim).
 * @returns {SeedSegment[]}
 */
function realisticSpread(total) {
  const inProgress = Math.min(1_000, Math.floor(total * 0.1));
  const notStarted = Math.min(2_000, Math.floor(total * 0.3));
  return [
    { kind: 'ended', count: total - inProgress - notStarted },
    { kind: 'in_progress', count: inProgress },
    { kind: 'not_started', count: notStarted },
  ];
}

/** SQLite: one transaction of prepared inserts, the database file's own safety off while it runs. */
function seedSqlite(file, segments, now) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  try {
    // Nothing to recover if the seeding fails: the database is thrown away. taskdb sets WAL again when it opens it.
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    const hasLeases = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_leases'`).get() !== undefined;
    const insert = (table, columns) =>
      db.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    const insertTask = insert('tasks', TASK_COLUMNS);
    const insertLease = hasLeases ? insert('task_leases', LEASE_COLUMNS) : undefined;
    const values = (row, columns) => columns.map((column) => row[column]);
    let rows = 0;
    db.transaction(() => {
      for (const { task, leases } of seededRows(segments, now)) {
        insertTask.run(values(task, TASK_COLUMNS));
        if (insertLease) for (const lease of leases) insertLease.run(values(lease, LEASE_COLUMNS));
        rows += 1;
      }
    })();
    return { rows, leases: hasLeases };
  } finally {
    db.close();
  }
}

/** The SQL type of each column of a PostgreSQL table, for the casts of unnest(). */
async function columnTypes(client, table) {
  const { rows } = await client.query(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
    [table],
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.type]));
}

/**
 * PostgreSQL: INSERT … SELECT FROM unnest() of one array per column, PG_BATCH_ROWS rows a
 * statement, in one transaction; the casts come from the table itself, then ANALYZE, as
 * autovacuum would soon do on a live database.
 */
async function seedPostgres(client, segments, now) {
  const taskTypes = await columnTypes(client, 'tasks');
  const leaseTypes = await columnTypes(client, 'task_leases');
  const hasLeases = Object.keys(leaseTypes).length > 0;
  const batch = (table, columns, types) => {
    const missing = columns.filter((column) => !types[column]);
    if (missing.length > 0) throw new Error(`${table} has no column ${missing.join(', ')}: update taskRow/leaseRows in ${__filename}`);
    const arrays = columns.map(() => []);
    const sql = `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${columns
      .map((column, k) => `$${k + 1}::${types[column]}[]`)
      .join(', ')})`;
    const toSql = columns.map((column) => (types[column] === 'boolean' ? (v) => (v === null ? null : Boolean(v)) : (v) => v));
    return {
      add(row) {
        columns.forEach((column, k) => arrays[k].push(toSql[k](row[column])));
      },
      size: () => arrays[0].length,
      async flush() {
        if (arrays[0].length === 0) return;
        await client.query(sql, arrays);
        for (const array of arrays) array.length = 0;
      },
    };
  };
  const tasks = batch('tasks', TASK_COLUMNS, taskTypes);
  const leases = hasLeases ? batch('task_leases', LEASE_COLUMNS, leaseTypes) : undefined;
  let rows = 0;
  await client.query('BEGIN');
  try {
    for (const { task, leases: taskLeases } of seededRows(segments, now)) {
      tasks.add(task);
      if (leases) for (const lease of taskLeases) leases.add(lease);
      rows += 1;
      if (tasks.size() >= PG_BATCH_ROWS) {
        await tasks.flush();
        await leases?.flush();
      }
    }
    await tasks.flush();
    await leases?.flush();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  await client.query('ANALYZE tasks');
  if (hasLeases) await client.query('ANALYZE task_leases');
  return { rows, leases: hasLeases };
}

/**
 * A database of its own for one taskdb: `env` points taskdb at it, `seed` fills the tables
 * taskdb's migrations made, `count` and `seqAt` read how many tasks are in a state and the
 * sequence number (the list cursor) of one of them, `drop` removes it all.
 * @typedef {{ env: Record<string, string>, seed(segments: SeedSegment[], now: number): Promise<{ rows: number, leases: boolean }>,
 *   count(state: string): Promise<number>, seqAt(state: string, offset: number): Promise<number>, drop(): Promise<void> }} TaskDatabase
 */

const SEQ_AT = 'SELECT seq FROM tasks WHERE state = $1 ORDER BY seq LIMIT 1 OFFSET $2';
const COUNT = 'SELECT count(*) AS count FROM tasks WHERE state = $1';

/** The statement in SQLite's form: `?` for `$n`. */
const sqlite = (sql) => sql.replace(/\$\d+/g, '?');

/** Reads with a connection of its own, read-only (taskdb may be running: WAL lets both). */
function readSqlite(file, read) {
  const Database = require('better-sqlite3');
  const db = new Database(file, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** @returns {Promise<TaskDatabase>} SQLite: a folder of its own under `workDir`. */
async function sqliteDatabase(workDir, name) {
  const dir = path.join(workDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'tasks.sqlite');
  return {
    env: { DATA_DIR: dir },
    seed: async (segments, now) => seedSqlite(file, segments, now),
    count: async (state) => readSqlite(file, (db) => db.prepare(sqlite(COUNT)).get(state).count),
    seqAt: async (state, offset) => readSqlite(file, (db) => db.prepare(sqlite(SEQ_AT)).get(state, offset).seq),
    drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** @returns {Promise<TaskDatabase>} PostgreSQL: a schema of its own (kit's test schemas: TEST_DATABASE_URL, else the machine's). */
async function postgresDatabase() {
  const { Client } = require('pg');
  const { createTestSchema } = require('@pixelmill/kit/testing');
  const schema = await createTestSchema('scale');
  const done = untilDone(() => schema.drop());
  const withClient = async (fn) => {
    const client = new Client({ connectionString: schema.url, options: `-c search_path=${schema.schema}` });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    env: { DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema },
    seed: (segments, now) => withClient((client) => seedPostgres(client, segments, now)),
    count: (state) => withClient(async (client) => Number((await client.query(COUNT, [state])).rows[0].count)),
    seqAt: (state, offset) => withClient(async (client) => Number((await client.query(SEQ_AT, [state, offset])).rows[0].seq)),
    drop: () => schema.drop().finally(done),
  };
}

/** Whether the machine's PostgreSQL answers; the reason when it does not. */
async function postgresReachable() {
  const { Client } = require('pg');
  const { TEST_DATABASE_URL } = require('@pixelmill/kit/testing');
  const client = new Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `PostgreSQL at ${TEST_DATABASE_URL} does not answer (${err.message})` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

module.exports = {
  TASK_COLUMNS,
  LEASE_COLUMNS,
  seededTaskId,
  seededLeaseToken,
  realisticSpread,
  sqliteDatabase,
  postgresDatabase,
  postgresReachable,
};
