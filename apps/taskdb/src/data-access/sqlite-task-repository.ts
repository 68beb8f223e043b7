import Database from 'better-sqlite3';
import { migrateSqlite, openSqlite, type SqliteOptions } from '@pixelmill/kit';
import type { TaskState } from '@pixelmill/contracts';
import { SqliteGroupCommit } from './sqlite-group-commit';
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
 * Schema versions, applied in order and recorded in `PRAGMA user_version`, so a database
 * written by an older version is brought up to date when taskdb starts. Exported for the tests
 * that build a database of an older version.
 */
export const SQLITE_TASK_MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS tasks (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     op TEXT NOT NULL,
     content_type TEXT NOT NULL,
     state TEXT NOT NULL,
     attempt INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     lease_token TEXT,
     lease_expires_at INTEGER,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, seq);
   CREATE INDEX IF NOT EXISTS tasks_by_lease ON tasks (state, lease_expires_at);`,
  `ALTER TABLE tasks ADD COLUMN owner TEXT;
   ALTER TABLE tasks ADD COLUMN idempotency_key TEXT;
   ALTER TABLE tasks ADD COLUMN attempt_deadline INTEGER;
   ALTER TABLE tasks ADD COLUMN available_at INTEGER NOT NULL DEFAULT 0;
   CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (coalesce(owner, ''), idempotency_key)
     WHERE idempotency_key IS NOT NULL;`,
  `ALTER TABLE tasks ADD COLUMN lost_attempts INTEGER NOT NULL DEFAULT 0;`,
  `ALTER TABLE tasks ADD COLUMN fingerprint TEXT;
   ALTER TABLE tasks ADD COLUMN source_bytes INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE tasks ADD COLUMN result_bytes INTEGER;
   ALTER TABLE tasks ADD COLUMN width INTEGER;
   ALTER TABLE tasks ADD COLUMN height INTEGER;
   ALTER TABLE tasks ADD COLUMN source_deleted INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE tasks ADD COLUMN expired_at INTEGER;
   CREATE INDEX tasks_with_source_to_delete ON tasks (seq)
     WHERE source_deleted = 0 AND state IN ('finished', 'failed');
   CREATE INDEX tasks_to_expire ON tasks (updated_at)
     WHERE expired_at IS NULL AND state IN ('finished', 'failed');
   CREATE TABLE owner_usage (owner TEXT PRIMARY KEY, stored_bytes INTEGER NOT NULL) WITHOUT ROWID;`,
  // The claim reads the first entry of tasks_claimable: tasks waiting out a backoff sort after
  // those ready now, so a claim never walks them. Leases held when this version arrives get a row
  // too (granted at their last change, the best known), so that every held lease has one. The
  // statements name their indexes (INDEXED BY): tasks_by_state is made sure of here.
  `CREATE INDEX tasks_claimable ON tasks (available_at, seq) WHERE state = 'not_started';
   CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, seq);
   CREATE TABLE task_leases (
     task_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     lease_token TEXT NOT NULL,
     granted_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     ended_at INTEGER,
     outcome TEXT,
     PRIMARY KEY (task_id, attempt)
   ) WITHOUT ROWID;
   INSERT INTO task_leases (task_id, attempt, lease_token, granted_at, expires_at)
     SELECT id, attempt, lease_token, updated_at, lease_expires_at FROM tasks
     WHERE state = 'in_progress' AND lease_token IS NOT NULL AND lease_expires_at IS NOT NULL;`,
  // The operation's parameters (see storedParams); the tasks before it had none.
  `ALTER TABLE tasks ADD COLUMN params TEXT;`,
];

/**
 * The statements, by name (also read by the query-plan tests). Without statistics SQLite's planner
 * prefers an equality on `state` to a partial index; `INDEXED BY` names the index that keeps these
 * queries from walking every task in a state (and fails loudly should it ever be missing).
 */
export const SQLITE_TASK_SQL = {
  insert: `INSERT INTO tasks (id, op, params, content_type, state, owner, idempotency_key, fingerprint, source_bytes, width, height,
             available_at, created_at, updated_at)
           VALUES (@id, @op, @params, @contentType, 'not_started', @owner, @idempotencyKey, @fingerprint, @sourceBytes, @width, @height,
             @now, @now, @now)
           ON CONFLICT DO NOTHING RETURNING *`,
  usage: 'SELECT stored_bytes FROM owner_usage WHERE owner = ?',
  addUsage: `INSERT INTO owner_usage (owner, stored_bytes) VALUES (@owner, max(0, @bytes))
             ON CONFLICT (owner) DO UPDATE SET stored_bytes = max(0, stored_bytes + @bytes)`,
  // A failed task's source is kept until the task expires, so that an operator can retry it: the
  // index (made for both ended states) walks those too, as many as failed within the retention.
  sourcesToDelete: `SELECT id FROM tasks INDEXED BY tasks_with_source_to_delete
                    WHERE source_deleted = 0 AND state IN ('finished', 'failed') AND state <> 'failed' ORDER BY seq LIMIT ?`,
  toExpire: `SELECT id, attempt FROM tasks INDEXED BY tasks_to_expire WHERE expired_at IS NULL AND state IN ('finished', 'failed') AND updated_at < ?
             ORDER BY updated_at LIMIT ?`,
  markSourceDeleted: 'UPDATE tasks SET source_deleted = 1 WHERE id = ?',
  // The key may be used again: the task it named is gone.
  markExpired: 'UPDATE tasks SET expired_at = ?, source_deleted = 1, idempotency_key = NULL WHERE id = ?',
  get: 'SELECT * FROM tasks WHERE id = ?',
  byIdempotencyKey: `SELECT * FROM tasks WHERE coalesce(owner, '') = ? AND idempotency_key = ?`,
  // Guarded by the row as it was read.
  update: `UPDATE tasks SET state = @state, attempt = @attempt, error = @error, lease_token = @leaseToken,
             lease_expires_at = @leaseExpiresAt, attempt_deadline = @attemptDeadline, lost_attempts = @lostAttempts,
             available_at = @availableAt, result_bytes = @resultBytes, updated_at = @updatedAt
           WHERE id = @id AND state = @wasState AND attempt = @wasAttempt AND lease_token IS @wasLeaseToken
             AND lease_expires_at IS @wasLeaseExpiresAt`,
  listByState: 'SELECT seq, id FROM tasks INDEXED BY tasks_by_state WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?',
  listTasksByState: 'SELECT * FROM tasks INDEXED BY tasks_by_state WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?',
  remove: 'DELETE FROM tasks WHERE id = ?',
  removeLeases: 'DELETE FROM task_leases WHERE task_id = ?',
  counts: `SELECT state, count(*) AS tasks,
             (SELECT available_at FROM tasks INDEXED BY tasks_claimable WHERE state = 'not_started'
              ORDER BY available_at LIMIT 1) AS oldest_waiting_since
           FROM tasks INDEXED BY tasks_by_state WHERE state IN ('not_started', 'in_progress') GROUP BY state`,
  // "Oldest claimable": the task ready for the longest time. A new task is ready when it is
  // created, a retried one when its backoff ends; ties (the same ms) go by creation order. The
  // first entry of tasks_claimable is that task, and tasks still waiting out a backoff sort after
  // it, so a claim never walks them.
  claim: `UPDATE tasks SET state = 'in_progress', attempt = attempt + 1, lease_token = @leaseToken,
            lease_expires_at = @leaseExpiresAt, attempt_deadline = @attemptDeadline, updated_at = @now
          WHERE seq = (SELECT seq FROM tasks INDEXED BY tasks_claimable WHERE state = 'not_started' AND available_at <= @now
                       ORDER BY available_at, seq LIMIT 1)
          RETURNING *`,
  anyLeaseExpired: `SELECT 1 AS found FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= ? LIMIT 1`,
  expired: `SELECT * FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?`,
  grantLease: `INSERT INTO task_leases (task_id, attempt, lease_token, granted_at, expires_at)
               VALUES (@taskId, @attempt, @leaseToken, @now, @expiresAt)`,
  extendLease: 'UPDATE task_leases SET expires_at = @expiresAt WHERE task_id = @taskId AND attempt = @attempt AND ended_at IS NULL',
  endLease: `UPDATE task_leases SET ended_at = @now, outcome = @outcome
             WHERE task_id = @taskId AND attempt = @attempt AND ended_at IS NULL`,
  leases: 'SELECT * FROM task_leases WHERE task_id = ? ORDER BY attempt',
} as const;

interface LeaseRow {
  task_id: string;
  attempt: number;
  lease_token: string;
  granted_at: number;
  expires_at: number;
  ended_at: number | null;
  outcome: LeaseRecord['outcome'];
}

/**
 * Task rows in one SQLite file (WAL), one writer at a time. The writes asked for in one turn of
 * the event loop share a transaction and its commit (`SqliteGroupCommit`), each answered once it
 * is on disk.
 */
export class SqliteTaskRepository implements TaskRepository {
  private readonly db: Database.Database;
  private readonly connection: SqliteGroupCommit;
  private readonly statements;
  private readonly store: TaskStore;

  /**
   * @param synchronous FULL (default): a commit is on disk before taskdb answers, so an accepted
   * task survives even a power loss. NORMAL saves an fsync per commit (see `SqliteOptions`).
   */
  constructor(file: string, synchronous: SqliteOptions['synchronous'] = 'FULL') {
    this.db = openSqlite(Database, file, { synchronous });
    migrateSqlite(this.db, SQLITE_TASK_MIGRATIONS);
    this.connection = new SqliteGroupCommit(this.db);
    this.statements = {
      insert: this.db.prepare<[Record<string, unknown>], TaskRow>(SQLITE_TASK_SQL.insert),
      usage: this.db.prepare<[string], { stored_bytes: number }>(SQLITE_TASK_SQL.usage),
      addUsage: this.db.prepare<[{ owner: string; bytes: number }]>(SQLITE_TASK_SQL.addUsage),
      sourcesToDelete: this.db.prepare<[number], { id: string }>(SQLITE_TASK_SQL.sourcesToDelete),
      toExpire: this.db.prepare<[number, number], { id: string; attempt: number }>(SQLITE_TASK_SQL.toExpire),
      markSourceDeleted: this.db.prepare<[string]>(SQLITE_TASK_SQL.markSourceDeleted),
      markExpired: this.db.prepare<[number, string]>(SQLITE_TASK_SQL.markExpired),
      get: this.db.prepare<[string], TaskRow>(SQLITE_TASK_SQL.get),
      byIdempotencyKey: this.db.prepare<[string, string], TaskRow>(SQLITE_TASK_SQL.byIdempotencyKey),
      update: this.db.prepare<[Record<string, unknown>]>(SQLITE_TASK_SQL.update),
      listByState: this.db.prepare<[string, number, number], { seq: number; id: string }>(SQLITE_TASK_SQL.listByState),
      listTasksByState: this.db.prepare<[string, number, number], TaskRow>(SQLITE_TASK_SQL.listTasksByState),
      remove: this.db.prepare<[string]>(SQLITE_TASK_SQL.remove),
      removeLeases: this.db.prepare<[string]>(SQLITE_TASK_SQL.removeLeases),
      counts: this.db.prepare<[], TaskCountRow>(SQLITE_TASK_SQL.counts),
      claim: this.db.prepare<[Record<string, unknown>], TaskRow>(SQLITE_TASK_SQL.claim),
      anyLeaseExpired: this.db.prepare<[number], { found: number }>(SQLITE_TASK_SQL.anyLeaseExpired),
      expired: this.db.prepare<[number, number], TaskRow>(SQLITE_TASK_SQL.expired),
      grantLease: this.db.prepare<[{ taskId: string; attempt: number; leaseToken: string; now: number; expiresAt: number }]>(
        SQLITE_TASK_SQL.grantLease,
      ),
      extendLease: this.db.prepare<[{ taskId: string; attempt: number; expiresAt: number }]>(SQLITE_TASK_SQL.extendLease),
      endLease: this.db.prepare<[{ taskId: string; attempt: number; now: number; outcome: string }]>(SQLITE_TASK_SQL.endLease),
      leases: this.db.prepare<[string], LeaseRow>(SQLITE_TASK_SQL.leases),
    };
    this.store = this.createStore();
  }

  /** Transactions committed on this connection so far. */
  get commits(): number {
    return this.connection.commits;
  }

  transaction<T>(fn: (store: TaskStore) => Promise<T>): Promise<T> {
    return this.connection.exclusive(async () => {
      // Taken at once: no other connection (another process on the same file) writes in between.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.store);
        this.db.exec('COMMIT');
        this.connection.countCommit();
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  get(id: string): Promise<TaskRecord | undefined> {
    return this.connection.read(() => this.getNow(id));
  }

  byIdempotencyKey(owner: string | undefined, key: string): Promise<TaskRecord | undefined> {
    return this.connection.read(() => {
      const row = this.statements.byIdempotencyKey.get(owner ?? '', key);
      return row && toRecord(row);
    });
  }

  insert(task: NewTask, now: number, quotaBytes?: number): Promise<InsertResult> {
    return this.connection.write((): InsertResult => {
      const owner = task.owner ?? null;
      if (quotaBytes !== undefined) {
        const storedBytes = this.statements.usage.get(owner ?? '')?.stored_bytes ?? 0;
        if (storedBytes + task.sourceBytes > quotaBytes) return { kind: 'over_quota', storedBytes };
      }
      const row = this.statements.insert.get({
        id: task.id,
        op: task.op,
        params: storedParams(task.params),
        contentType: task.contentType,
        owner,
        idempotencyKey: task.idempotencyKey ?? null,
        fingerprint: task.fingerprint ?? null,
        sourceBytes: task.sourceBytes,
        width: task.width ?? null,
        height: task.height ?? null,
        now,
      });
      if (!row) return { kind: 'taken' };
      this.addUsageNow(owner, task.sourceBytes);
      return { kind: 'created', record: toRecord(row) };
    });
  }

  update(record: TaskRecord, change: StateUpdate, now: number): Promise<TaskRecord | undefined> {
    return this.connection.write(() => this.updateNow(record, change, now));
  }

  endAttempt(id: string, leaseToken: string, end: AttemptEnd, now: number): Promise<TaskRecord | undefined> {
    return this.connection.write(() => {
      const record = this.getNow(id);
      if (record?.state !== 'in_progress' || record.leaseToken !== leaseToken) return undefined;
      const change = { ...end, leaseExpiresAt: null, attemptDeadline: null, leaseOutcome: end.state };
      return this.updateNow(record, change, now);
    });
  }

  claim(grant: LeaseGrant, now: number): Promise<ClaimResult> {
    return this.connection.write((): ClaimResult => {
      const leasesExpired = this.statements.anyLeaseExpired.get(now) !== undefined;
      const row = this.statements.claim.get({ ...grant, now });
      if (!row) return { record: undefined, leasesExpired };
      const record = toRecord(row);
      this.statements.grantLease.run({
        taskId: record.id,
        attempt: record.attempt,
        leaseToken: grant.leaseToken,
        now,
        expiresAt: grant.leaseExpiresAt,
      });
      return { record, leasesExpired };
    });
  }

  anyLeaseExpired(now: number): Promise<boolean> {
    return this.connection.read(() => this.statements.anyLeaseExpired.get(now) !== undefined);
  }

  listByState(state: TaskState, afterSeq: number, limit: number): Promise<Array<{ seq: number; id: string }>> {
    return this.connection.read(() => this.statements.listByState.all(state, afterSeq, limit));
  }

  listTasksByState(state: TaskState, afterSeq: number, limit: number): Promise<TaskRecord[]> {
    return this.connection.read(() => this.statements.listTasksByState.all(state, afterSeq, limit).map(toRecord));
  }

  counts(): Promise<TaskCounts> {
    return this.connection.read(() => toCounts(this.statements.counts.all()));
  }

  usage(owner: string | null): Promise<number> {
    return this.connection.read(() => this.statements.usage.get(owner ?? '')?.stored_bytes ?? 0);
  }

  sourcesToDelete(limit: number): Promise<string[]> {
    return this.connection.read(() => this.statements.sourcesToDelete.all(limit).map((row) => row.id));
  }

  toExpire(before: number, limit: number): Promise<Array<{ id: string; attempt: number }>> {
    return this.connection.read(() => this.statements.toExpire.all(before, limit));
  }

  leases(taskId: string): Promise<LeaseRecord[]> {
    return this.connection.read(() =>
      this.statements.leases.all(taskId).map((row) => ({
        taskId: row.task_id,
        attempt: row.attempt,
        leaseToken: row.lease_token,
        grantedAt: row.granted_at,
        expiresAt: row.expires_at,
        endedAt: row.ended_at,
        outcome: row.outcome,
      })),
    );
  }

  ping(): Promise<void> {
    return this.connection.read(() => {
      this.db.prepare('SELECT 1').get();
    });
  }

  /** Closes the file once the work queued before has run. */
  close(): Promise<void> {
    return this.connection.exclusive(() => {
      this.db.close();
    });
  }

  private getNow(id: string): TaskRecord | undefined {
    const row = this.statements.get.get(id);
    return row && toRecord(row);
  }

  private addUsageNow(owner: string | null, bytes: number): void {
    if (bytes !== 0) this.statements.addUsage.run({ owner: owner ?? '', bytes });
  }

  /** `TaskWriter.update`, inside a transaction. */
  private updateNow(record: TaskRecord, change: StateUpdate, now: number): TaskRecord | undefined {
    const next = applyUpdate(record, change, now);
    const { changes } = this.statements.update.run({
      id: next.id,
      state: next.state,
      attempt: next.attempt,
      error: next.error,
      leaseToken: next.leaseToken,
      leaseExpiresAt: next.leaseExpiresAt,
      attemptDeadline: next.attemptDeadline,
      lostAttempts: next.lostAttempts,
      availableAt: next.availableAt,
      resultBytes: next.resultBytes,
      updatedAt: now,
      wasState: record.state,
      wasAttempt: record.attempt,
      wasLeaseToken: record.leaseToken,
      wasLeaseExpiresAt: record.leaseExpiresAt,
    });
    if (changes === 0) return undefined;
    const lease = { taskId: record.id, attempt: record.attempt };
    if (change.leaseOutcome !== undefined) this.statements.endLease.run({ ...lease, now, outcome: change.leaseOutcome });
    else if (next.state === 'in_progress' && next.leaseExpiresAt !== null && next.leaseExpiresAt !== record.leaseExpiresAt) {
      this.statements.extendLease.run({ ...lease, expiresAt: next.leaseExpiresAt });
    }
    this.addUsageNow(next.owner, (next.resultBytes ?? 0) - (record.resultBytes ?? 0));
    return next;
  }

  /** The store of `transaction`: the same connection, inside the transaction the queue holds. */
  private createStore(): TaskStore {
    const { statements } = this;
    return {
      getForUpdate: async (id) => this.getNow(id),
      update: async (record, change, now) => this.updateNow(record, change, now),
      expired: async (now, limit) => statements.expired.all(now, limit).map(toRecord),
      markSourceDeleted: async (record) => {
        if (record.sourceDeleted || record.expiredAt !== null) return;
        statements.markSourceDeleted.run(record.id);
        this.addUsageNow(record.owner, -record.sourceBytes);
      },
      markExpired: async (record, now) => {
        if (record.expiredAt !== null) return;
        statements.markExpired.run(now, record.id);
        this.addUsageNow(record.owner, -((record.sourceDeleted ? 0 : record.sourceBytes) + (record.resultBytes ?? 0)));
      },
      remove: async (record) => {
        statements.remove.run(record.id);
        statements.removeLeases.run(record.id);
        this.addUsageNow(record.owner, -countedBytes(record));
      },
    };
  }
}
