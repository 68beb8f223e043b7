import { types as pgTypes, type CustomTypesConfig } from 'pg';
import { AppError } from '@pixelmill/kit';
import {
  inTransaction,
  isDatabaseUnavailable,
  migratePostgres,
  openPostgres,
  type Pool,
  type PoolClient,
  type PostgresOptions,
} from '@pixelmill/kit/postgres';
import type { TaskState } from '@pixelmill/contracts';
import {
  applyUpdate,
  countedBytes,
  storedParams,
  toRecord,
  type AttemptEnd,
  type ClaimResult,
  type InsertResult,
  type LeaseGrant,
  type LeaseRecord,
  type NewTask,
  type StateUpdate,
  toCounts,
  type TaskCountRow,
  type TaskCounts,
  type TaskRecord,
  type TaskRepository,
  type TaskRow,
  type TaskStore,
} from './task-repository';

/**
 * Schema versions (see `migratePostgres`). The same column names as in SQLite; times are BIGINT
 * ms since the epoch, as the domain counts them. Exported for the tests that build a database of
 * an older version.
 */
export const POSTGRES_TASK_MIGRATIONS: readonly string[] = [
  `CREATE TABLE tasks (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     op TEXT NOT NULL,
     content_type TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('not_started', 'in_progress', 'finished', 'failed')),
     attempt INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     lease_token TEXT,
     lease_expires_at BIGINT,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     owner TEXT,
     idempotency_key TEXT,
     attempt_deadline BIGINT,
     available_at BIGINT NOT NULL DEFAULT 0,
     lost_attempts INTEGER NOT NULL DEFAULT 0,
     fingerprint TEXT,
     source_bytes BIGINT NOT NULL DEFAULT 0,
     result_bytes BIGINT,
     width INTEGER,
     height INTEGER,
     source_deleted BOOLEAN NOT NULL DEFAULT false,
     expired_at BIGINT
   );
   -- A queue's rows change many times: vacuumed and analyzed after 1 % of them changed, not 20 %,
   -- so that the dead index entries a claim steps over stay few (where autovacuum runs).
   ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01);
   CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (coalesce(owner, ''), idempotency_key)
     WHERE idempotency_key IS NOT NULL;
   CREATE INDEX tasks_by_state ON tasks (state, seq);
   CREATE INDEX tasks_claimable ON tasks (available_at, seq) WHERE state = 'not_started';
   CREATE INDEX tasks_by_lease ON tasks (lease_expires_at) WHERE state = 'in_progress';
   CREATE INDEX tasks_with_source_to_delete ON tasks (seq) WHERE NOT source_deleted AND state IN ('finished', 'failed');
   CREATE INDEX tasks_to_expire ON tasks (updated_at) WHERE expired_at IS NULL AND state IN ('finished', 'failed');
   -- An owner's stored bytes: the sum of its rows (see USAGE_SHARDS).
   CREATE TABLE owner_usage (
     owner TEXT NOT NULL,
     shard SMALLINT NOT NULL,
     stored_bytes BIGINT NOT NULL,
     PRIMARY KEY (owner, shard)
   );
   CREATE TABLE task_leases (
     task_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     lease_token TEXT NOT NULL,
     granted_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     ended_at BIGINT,
     outcome TEXT CHECK (outcome IN ('finished', 'failed', 'released', 'lost')),
     PRIMARY KEY (task_id, attempt)
   );`,
  // The operation's parameters (see storedParams); the tasks before it had none.
  `ALTER TABLE tasks ADD COLUMN params TEXT;`,
];

const INT8_OID = 20;
/** BIGINT columns (times in ms, bytes, seq) as numbers: all stay far below 2^53. */
const INT8_AS_NUMBER = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID ? Number : (pgTypes.getTypeParser(oid, format) as unknown)) as CustomTypesConfig['getTypeParser'],
};

/**
 * An owner's stored bytes are spread over rows, because a row that every create and finish of one
 * owner updates (all anonymous clients are one owner) makes them wait for each other's commit:
 * about 1,000 a second here. Shard 0, the gate, is written only by creates under a quota, which
 * lock it, and so are admitted one at a time, each seeing the gate as the one before left it.
 * Every other change of the bytes goes to one of the other shards, chosen by the task's seq, and
 * locks nothing the gate's holders wait for. A create under a quota reads the other shards as
 * its statement began: a change committed meanwhile did not gate anything and may count as after it.
 */
const USAGE_SHARDS = 16;
/** The shard of a task's changes of stored bytes, other than a create under a quota (SQL, over `seq`). */
const SHARD_OF_SEQ = `(1 + seq % ${USAGE_SHARDS - 1})`;

/** A statement prepared once per connection (by its name). */
const sql = (name: string, text: string) => ({ name: `taskdb_${name}`, text, types: INT8_AS_NUMBER });

const SQL = {
  get: sql('get', 'SELECT * FROM tasks WHERE id = $1'),
  getForUpdate: sql('get_for_update', 'SELECT * FROM tasks WHERE id = $1 FOR UPDATE'),
  byIdempotencyKey: sql('by_idempotency_key', `SELECT * FROM tasks WHERE coalesce(owner, '') = $1 AND idempotency_key = $2`),
  // The task and its source's bytes counted for its owner, in one statement. With a quota ($11)
  // the owner's gate is locked first (FOR UPDATE reads its latest value), so creates of one owner
  // are admitted one at a time; an owner without a gate yet gets one first (see insert).
  insert: sql(
    'insert',
    `WITH gate AS (
       SELECT stored_bytes FROM owner_usage WHERE owner = coalesce($4, '') AND shard = 0 AND $11::bigint IS NOT NULL
       FOR UPDATE
     ), stored AS MATERIALIZED (
       SELECT (coalesce((SELECT stored_bytes FROM gate), 0) + coalesce((SELECT sum(stored_bytes) FROM owner_usage
         WHERE owner = coalesce($4, '') AND shard <> 0 AND $11::bigint IS NOT NULL), 0))::bigint AS stored_before
     ), admission AS (
       SELECT stored_before, $11::bigint IS NULL OR EXISTS (SELECT FROM gate) AS locked,
         $11::bigint IS NULL OR stored_before + $7 <= $11::bigint AS fits
       FROM stored
     ), created AS (
       INSERT INTO tasks (id, op, content_type, state, owner, idempotency_key, fingerprint, source_bytes, width, height,
         available_at, created_at, updated_at, params)
       SELECT $1, $2, $3, 'not_started', $4, $5, $6, $7, $8, $9, $10, $10, $10, $12 FROM admission WHERE locked AND fits
       ON CONFLICT DO NOTHING
       RETURNING *
     ), counted AS (
       INSERT INTO owner_usage (owner, shard, stored_bytes)
       SELECT coalesce(owner, ''), CASE WHEN $11::bigint IS NULL THEN ${SHARD_OF_SEQ} ELSE 0 END, source_bytes
       FROM created WHERE source_bytes <> 0
       ON CONFLICT (owner, shard) DO UPDATE SET stored_bytes = owner_usage.stored_bytes + excluded.stored_bytes
     )
     SELECT admission.stored_before, admission.locked, admission.fits, created.*
     FROM admission LEFT JOIN created ON true`,
  ),
  addGate: sql('add_gate', 'INSERT INTO owner_usage (owner, shard, stored_bytes) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING'),
  // Guarded by the row as it was read; the lease row ended or moved, and a new result counted, at once.
  update: sql(
    'update',
    `WITH changed AS (
       UPDATE tasks SET state = $2, attempt = $3, error = $4, lease_token = $5, lease_expires_at = $6,
         attempt_deadline = $7, lost_attempts = $8, available_at = $9, result_bytes = $10, updated_at = $11
       WHERE id = $1 AND state = $12 AND attempt = $13 AND lease_token IS NOT DISTINCT FROM $14
         AND lease_expires_at IS NOT DISTINCT FROM $15
       RETURNING owner, seq
     ), lease AS (
       UPDATE task_leases SET
         ended_at = CASE WHEN $16::text IS NULL THEN ended_at ELSE $11 END,
         outcome = coalesce($16::text, outcome),
         expires_at = CASE WHEN $16::text IS NULL THEN $6 ELSE expires_at END
       WHERE task_id = $1 AND attempt = $13 AND ended_at IS NULL AND ($16::text IS NOT NULL OR $17::boolean)
         AND EXISTS (SELECT FROM changed)
     ), usage AS (
       INSERT INTO owner_usage (owner, shard, stored_bytes)
       SELECT coalesce(owner, ''), ${SHARD_OF_SEQ}, $18::bigint FROM changed WHERE $18::bigint <> 0
       ON CONFLICT (owner, shard) DO UPDATE SET stored_bytes = owner_usage.stored_bytes + excluded.stored_bytes
     )
     SELECT count(*)::int AS changed FROM changed`,
  ),
  endAttempt: sql(
    'end_attempt',
    `WITH changed AS (
       UPDATE tasks SET state = $3, error = $4, result_bytes = $5, lease_expires_at = NULL, attempt_deadline = NULL,
         updated_at = $6
       WHERE id = $1 AND state = 'in_progress' AND lease_token = $2
       RETURNING *
     ), lease AS (
       UPDATE task_leases SET ended_at = $6, outcome = $3
       WHERE task_id = $1 AND attempt = (SELECT attempt FROM changed) AND ended_at IS NULL
     ), usage AS (
       INSERT INTO owner_usage (owner, shard, stored_bytes)
       SELECT coalesce(owner, ''), ${SHARD_OF_SEQ}, result_bytes FROM changed WHERE coalesce(result_bytes, 0) <> 0
       ON CONFLICT (owner, shard) DO UPDATE SET stored_bytes = owner_usage.stored_bytes + excluded.stored_bytes
     )
     SELECT * FROM changed`,
  ),
  // "Oldest claimable": the task ready for the longest time. A new task is ready when it is
  // created, a retried one when its backoff ends; ties (the same ms) go by creation order. The
  // first entry of tasks_claimable is that task, and tasks still waiting out a backoff sort after
  // it, so a claim never walks them; rows other claims hold are skipped, not waited for.
  claim: sql(
    'claim',
    `WITH next AS (
       SELECT seq FROM tasks
       WHERE state = 'not_started' AND available_at <= $1
       ORDER BY available_at, seq
       LIMIT 1
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE tasks SET state = 'in_progress', attempt = tasks.attempt + 1, lease_token = $2, lease_expires_at = $3,
         attempt_deadline = $4, updated_at = $1
       FROM next WHERE tasks.seq = next.seq AND tasks.state = 'not_started'
       RETURNING tasks.*
     ), lease AS (
       INSERT INTO task_leases (task_id, attempt, lease_token, granted_at, expires_at)
       SELECT id, attempt, lease_token, $1, lease_expires_at FROM claimed
     )
     SELECT claimed.*, EXISTS (SELECT FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= $1) AS leases_expired
     FROM (VALUES (1)) AS one LEFT JOIN claimed ON true`,
  ),
  anyLeaseExpired: sql(
    'any_lease_expired',
    `SELECT EXISTS (SELECT FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= $1) AS found`,
  ),
  expired: sql(
    'expired',
    `SELECT * FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= $1
     ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
  ),
  // The keyset as a row comparison on tasks_by_state, (state, seq) > (state, cursor) within the
  // state. Written as `state = $1 ... ORDER BY seq`, the planner may walk the primary key in seq
  // order and filter on state, which reads every older task of the other states first.
  listByState: sql('list_by_state', 'SELECT seq, id FROM tasks WHERE (state, seq) > ($1, $2) AND state <= $1 ORDER BY state, seq LIMIT $3'),
  listTasksByState: sql(
    'list_tasks_by_state',
    'SELECT * FROM tasks WHERE (state, seq) > ($1, $2) AND state <= $1 ORDER BY state, seq LIMIT $3',
  ),
  // The task and its leases in one statement.
  remove: sql(
    'remove',
    `WITH removed AS (DELETE FROM tasks WHERE id = $1 RETURNING id)
     DELETE FROM task_leases WHERE task_id IN (SELECT id FROM removed)`,
  ),
  counts: sql(
    'counts',
    `SELECT state, count(*)::int AS tasks,
       (SELECT available_at FROM tasks WHERE state = 'not_started' ORDER BY available_at LIMIT 1) AS oldest_waiting_since
     FROM tasks WHERE state IN ('not_started', 'in_progress') GROUP BY state`,
  ),
  usage: sql('usage', 'SELECT GREATEST(0, coalesce(sum(stored_bytes), 0))::bigint AS stored_bytes FROM owner_usage WHERE owner = $1'),
  addUsage: sql(
    'add_usage',
    `INSERT INTO owner_usage (owner, shard, stored_bytes) VALUES ($1, 1 + $3::bigint % ${USAGE_SHARDS - 1}, $2)
     ON CONFLICT (owner, shard) DO UPDATE SET stored_bytes = owner_usage.stored_bytes + excluded.stored_bytes`,
  ),
  // A failed task's source is kept until the task expires, so that an operator can retry it: the
  // index (made for both ended states) walks those too, as many as failed within the retention.
  // `<> 'failed'`, not `= 'finished'`: an equality would let the planner walk tasks_by_state
  // instead, through every finished task, their sources deleted long ago.
  sourcesToDelete: sql(
    'sources_to_delete',
    `SELECT id FROM tasks WHERE NOT source_deleted AND state IN ('finished', 'failed') AND state <> 'failed' ORDER BY seq LIMIT $1`,
  ),
  toExpire: sql(
    'to_expire',
    `SELECT id, attempt FROM tasks WHERE expired_at IS NULL AND state IN ('finished', 'failed') AND updated_at < $1
     ORDER BY updated_at LIMIT $2`,
  ),
  markSourceDeleted: sql('mark_source_deleted', 'UPDATE tasks SET source_deleted = true WHERE id = $1'),
  // The key may be used again: the task it named is gone.
  markExpired: sql('mark_expired', 'UPDATE tasks SET expired_at = $2, source_deleted = true, idempotency_key = NULL WHERE id = $1'),
  leases: sql(
    'leases',
    `SELECT task_id AS "taskId", attempt, lease_token AS "leaseToken", granted_at AS "grantedAt", expires_at AS "expiresAt",
       ended_at AS "endedAt", outcome
     FROM task_leases WHERE task_id = $1 ORDER BY attempt`,
  ),
};

/** The statements, by name, for the query-plan tests. */
export { SQL as POSTGRES_TASK_SQL };

type Queryable = Pool | PoolClient;
/** A row of a LEFT JOIN whose right side may be missing. */
type Nullable<T> = { [K in keyof T]: T[K] | null };
type InsertRow = Nullable<TaskRow> & { stored_before: number; locked: boolean; fits: boolean };

/** A database out of reach is a 503 the caller may retry, not an internal error. */
function unavailableOr(err: unknown): unknown {
  if (!isDatabaseUnavailable(err)) return err;
  return new AppError('unavailable', 503, 'the task database is out of reach; try again shortly');
}

async function rows<R>(db: Queryable, statement: { name: string; text: string }, values: unknown[]): Promise<R[]> {
  const result = await db.query({ ...statement, values });
  return result.rows as R[];
}

async function addUsage(db: Queryable, record: TaskRecord, bytes: number): Promise<void> {
  if (bytes !== 0) await db.query({ ...SQL.addUsage, values: [record.owner ?? '', bytes, record.seq] });
}

/** The compare-and-set of `TaskWriter.update`, on the pool (its own commit) or in a transaction. */
async function update(db: Queryable, record: TaskRecord, change: StateUpdate, now: number): Promise<TaskRecord | undefined> {
  const next = applyUpdate(record, change, now);
  const leaseMoved = next.state === 'in_progress' && next.leaseExpiresAt !== null && next.leaseExpiresAt !== record.leaseExpiresAt;
  const [result] = await rows<{ changed: number }>(db, SQL.update, [
    next.id,
    next.state,
    next.attempt,
    next.error,
    next.leaseToken,
    next.leaseExpiresAt,
    next.attemptDeadline,
    next.lostAttempts,
    next.availableAt,
    next.resultBytes,
    now,
    record.state,
    record.attempt,
    record.leaseToken,
    record.leaseExpiresAt,
    change.leaseOutcome ?? null,
    leaseMoved,
    (next.resultBytes ?? 0) - (record.resultBytes ?? 0),
  ]);
  return result!.changed === 1 ? next : undefined;
}

/** The store of one transaction: every statement on the transaction's connection. */
function transactionStore(client: PoolClient): TaskStore {
  return {
    async getForUpdate(id) {
      const [row] = await rows<TaskRow>(client, SQL.getForUpdate, [id]);
      return row && toRecord(row);
    },
    update: (record, change, now) => update(client, record, change, now),
    async expired(now, limit) {
      return (await rows<TaskRow>(client, SQL.expired, [now, limit])).map(toRecord);
    },
    async markSourceDeleted(record) {
      if (record.sourceDeleted || record.expiredAt !== null) return;
      await client.query({ ...SQL.markSourceDeleted, values: [record.id] });
      await addUsage(client, record, -record.sourceBytes);
    },
    async markExpired(record, now) {
      if (record.expiredAt !== null) return;
      await client.query({ ...SQL.markExpired, values: [record.id, now] });
      await addUsage(client, record, -((record.sourceDeleted ? 0 : record.sourceBytes) + (record.resultBytes ?? 0)));
    },
    async remove(record) {
      await client.query({ ...SQL.remove, values: [record.id] });
      await addUsage(client, record, -countedBytes(record));
    },
  };
}

/**
 * Task rows in PostgreSQL, shared by any number of taskdb instances: rows read for change are
 * locked (`FOR UPDATE`), claims and the reaper skip the rows others hold (`SKIP LOCKED`).
 */
export class PostgresTaskRepository implements TaskRepository {
  private constructor(private readonly pool: Pool) {}

  /** Opens a pool in the schema and brings the tables up to date. */
  static async open(options: PostgresOptions): Promise<PostgresTaskRepository> {
    const pool = await openPostgres(options);
    try {
      await migratePostgres(pool, options.schema, 'taskdb', POSTGRES_TASK_MIGRATIONS);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresTaskRepository(pool);
  }

  transaction<T>(fn: (store: TaskStore) => Promise<T>): Promise<T> {
    return this.guard(() => inTransaction(this.pool, (client) => fn(transactionStore(client))));
  }

  get(id: string): Promise<TaskRecord | undefined> {
    return this.guard(async () => {
      const [row] = await rows<TaskRow>(this.pool, SQL.get, [id]);
      return row && toRecord(row);
    });
  }

  byIdempotencyKey(owner: string | undefined, key: string): Promise<TaskRecord | undefined> {
    return this.guard(async () => {
      const [row] = await rows<TaskRow>(this.pool, SQL.byIdempotencyKey, [owner ?? '', key]);
      return row && toRecord(row);
    });
  }

  insert(task: NewTask, now: number, quotaBytes?: number): Promise<InsertResult> {
    return this.guard(async () => {
      const values = [
        task.id,
        task.op,
        task.contentType,
        task.owner ?? null,
        task.idempotencyKey ?? null,
        task.fingerprint ?? null,
        task.sourceBytes,
        task.width ?? null,
        task.height ?? null,
        now,
        quotaBytes ?? null,
        storedParams(task.params),
      ];
      let [row] = await rows<InsertRow>(this.pool, SQL.insert, values);
      if (!row!.locked) {
        // The owner's first task under a quota: a gate to lock, then the same again.
        await this.pool.query({ ...SQL.addGate, values: [task.owner ?? ''] });
        [row] = await rows<InsertRow>(this.pool, SQL.insert, values);
      }
      if (!row!.fits) return { kind: 'over_quota', storedBytes: row!.stored_before };
      if (row!.id === null) return { kind: 'taken' };
      return { kind: 'created', record: toRecord(row as TaskRow) };
    });
  }

  update(record: TaskRecord, change: StateUpdate, now: number): Promise<TaskRecord | undefined> {
    return this.guard(() => update(this.pool, record, change, now));
  }

  endAttempt(id: string, leaseToken: string, end: AttemptEnd, now: number): Promise<TaskRecord | undefined> {
    return this.guard(async () => {
      const [row] = await rows<TaskRow>(this.pool, SQL.endAttempt, [id, leaseToken, end.state, end.error, end.resultBytes ?? null, now]);
      return row && toRecord(row);
    });
  }

  claim(grant: LeaseGrant, now: number): Promise<ClaimResult> {
    return this.guard(async () => {
      const values = [now, grant.leaseToken, grant.leaseExpiresAt, grant.attemptDeadline];
      const [row] = await rows<Nullable<TaskRow> & { leases_expired: boolean }>(this.pool, SQL.claim, values);
      return { record: row!.id === null ? undefined : toRecord(row as TaskRow), leasesExpired: row!.leases_expired };
    });
  }

  anyLeaseExpired(now: number): Promise<boolean> {
    return this.guard(async () => (await rows<{ found: boolean }>(this.pool, SQL.anyLeaseExpired, [now]))[0]!.found);
  }

  listByState(state: TaskState, afterSeq: number, limit: number): Promise<Array<{ seq: number; id: string }>> {
    return this.guard(() => rows(this.pool, SQL.listByState, [state, afterSeq, limit]));
  }

  listTasksByState(state: TaskState, afterSeq: number, limit: number): Promise<TaskRecord[]> {
    return this.guard(async () => (await rows<TaskRow>(this.pool, SQL.listTasksByState, [state, afterSeq, limit])).map(toRecord));
  }

  counts(): Promise<TaskCounts> {
    return this.guard(async () => toCounts(await rows<TaskCountRow>(this.pool, SQL.counts, [])));
  }

  usage(owner: string | null): Promise<number> {
    return this.guard(async () => (await rows<{ stored_bytes: number }>(this.pool, SQL.usage, [owner ?? '']))[0]?.stored_bytes ?? 0);
  }

  sourcesToDelete(limit: number): Promise<string[]> {
    return this.guard(async () => (await rows<{ id: string }>(this.pool, SQL.sourcesToDelete, [limit])).map((row) => row.id));
  }

  toExpire(before: number, limit: number): Promise<Array<{ id: string; attempt: number }>> {
    return this.guard(() => rows(this.pool, SQL.toExpire, [before, limit]));
  }

  leases(taskId: string): Promise<LeaseRecord[]> {
    return this.guard(() => rows(this.pool, SQL.leases, [taskId]));
  }

  ping(): Promise<void> {
    return this.guard(async () => {
      await this.pool.query('SELECT 1');
    });
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      throw unavailableOr(err);
    }
  }
}
