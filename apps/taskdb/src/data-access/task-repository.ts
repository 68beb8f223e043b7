import Database from 'better-sqlite3';
import { openSqlite, type SqliteOptions } from '@pixelmill/kit';
import type { ImageType, Operation, Task, TaskState } from '@pixelmill/contracts';

/** A task as stored, with the lease token that the API shows only to the claimer. */
export interface TaskRecord {
  seq: number;
  id: string;
  op: Operation;
  contentType: ImageType;
  state: TaskState;
  attempt: number;
  error: string | null;
  owner: string | null;
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  /** When the current attempt must end, however often its lease was extended. */
  attemptDeadline: number | null;
  /** Attempts that ended without a word from their worker (lease expired): what the attempt limit counts. */
  lostAttempts: number;
  /** A not_started task is not claimed before this time (retry backoff). */
  availableAt: number;
  createdAt: number;
  updatedAt: number;
  fingerprint: string | null;
  sourceBytes: number;
  resultBytes: number | null;
  width: number | null;
  height: number | null;
  sourceDeleted: boolean;
  expiredAt: number | null;
}

interface Row {
  seq: number;
  id: string;
  op: Operation;
  content_type: ImageType;
  state: TaskState;
  attempt: number;
  error: string | null;
  owner: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  attempt_deadline: number | null;
  lost_attempts: number;
  available_at: number;
  created_at: number;
  updated_at: number;
  fingerprint: string | null;
  source_bytes: number;
  result_bytes: number | null;
  width: number | null;
  height: number | null;
  source_deleted: number;
  expired_at: number | null;
}

const toRecord = (row: Row): TaskRecord => ({
  seq: row.seq,
  id: row.id,
  op: row.op,
  contentType: row.content_type,
  state: row.state,
  attempt: row.attempt,
  error: row.error,
  owner: row.owner,
  leaseToken: row.lease_token,
  leaseExpiresAt: row.lease_expires_at,
  attemptDeadline: row.attempt_deadline,
  lostAttempts: row.lost_attempts,
  availableAt: row.available_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  fingerprint: row.fingerprint,
  sourceBytes: row.source_bytes,
  resultBytes: row.result_bytes,
  width: row.width,
  height: row.height,
  sourceDeleted: row.source_deleted === 1,
  expiredAt: row.expired_at,
});

export const toTask = (record: TaskRecord): Task => ({
  id: record.id,
  op: record.op,
  contentType: record.contentType,
  state: record.state,
  attempt: record.attempt,
  error: record.error,
  owner: record.owner,
  createdAt: new Date(record.createdAt).toISOString(),
  updatedAt: new Date(record.updatedAt).toISOString(),
  leaseExpiresAt: record.leaseExpiresAt === null ? null : new Date(record.leaseExpiresAt).toISOString(),
  sourceBytes: record.sourceBytes,
  resultBytes: record.resultBytes,
  width: record.width,
  height: record.height,
});

export interface StateUpdate {
  state: TaskState;
  attempt?: number;
  error?: string | null;
  leaseToken?: string | null;
  leaseExpiresAt?: number | null;
  attemptDeadline?: number | null;
  lostAttempts?: number;
  availableAt?: number;
  resultBytes?: number;
}

export interface NewTask {
  id: string;
  op: Operation;
  contentType: ImageType;
  owner?: string;
  idempotencyKey?: string;
  fingerprint?: string;
  sourceBytes: number;
  width?: number;
  height?: number;
}

/**
 * Schema versions, applied in order and recorded in `PRAGMA user_version`, so a database
 * written by an older version is brought up to date when taskdb starts.
 */
const MIGRATIONS: readonly string[] = [
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
];

/** Task rows in SQLite (WAL). Plain reads and writes; the rules live in the domain. */
export class TaskRepository {
  private readonly db: Database.Database;
  private readonly statements;

  /**
   * @param synchronous FULL (default): a commit is on disk before taskdb answers, so an accepted
   * task survives even a power loss. NORMAL saves an fsync per commit (see `SqliteOptions`).
   */
  constructor(file: string, synchronous: SqliteOptions['synchronous'] = 'FULL') {
    this.db = openSqlite(Database, file, { synchronous });
    this.migrate();
    this.statements = {
      insert: this.db.prepare(
        `INSERT INTO tasks (id, op, content_type, state, owner, idempotency_key, fingerprint, source_bytes, width, height,
           available_at, created_at, updated_at)
         VALUES (@id, @op, @contentType, 'not_started', @owner, @idempotencyKey, @fingerprint, @sourceBytes, @width, @height,
           @now, @now, @now)`,
      ),
      usage: this.db.prepare<[string], { stored_bytes: number }>('SELECT stored_bytes FROM owner_usage WHERE owner = ?'),
      addUsage: this.db.prepare<[{ owner: string; bytes: number }]>(
        `INSERT INTO owner_usage (owner, stored_bytes) VALUES (@owner, max(0, @bytes))
         ON CONFLICT (owner) DO UPDATE SET stored_bytes = max(0, stored_bytes + @bytes)`,
      ),
      sourcesToDelete: this.db.prepare<[number], { id: string }>(
        `SELECT id FROM tasks WHERE source_deleted = 0 AND state IN ('finished', 'failed') ORDER BY seq LIMIT ?`,
      ),
      toExpire: this.db.prepare<[number, number], { id: string; attempt: number }>(
        `SELECT id, attempt FROM tasks WHERE expired_at IS NULL AND state IN ('finished', 'failed') AND updated_at < ?
         ORDER BY updated_at LIMIT ?`,
      ),
      markSourceDeleted: this.db.prepare<[string]>('UPDATE tasks SET source_deleted = 1 WHERE id = ?'),
      markExpired: this.db.prepare<[number, string]>(
        // The key may be used again: the task it named is gone.
        'UPDATE tasks SET expired_at = ?, source_deleted = 1, idempotency_key = NULL WHERE id = ?',
      ),
      get: this.db.prepare<[string], Row>('SELECT * FROM tasks WHERE id = ?'),
      byIdempotencyKey: this.db.prepare<[string, string], Row>(`SELECT * FROM tasks WHERE coalesce(owner, '') = ? AND idempotency_key = ?`),
      update: this.db.prepare(
        `UPDATE tasks SET state = @state, attempt = @attempt, error = @error, lease_token = @leaseToken,
           lease_expires_at = @leaseExpiresAt, attempt_deadline = @attemptDeadline, lost_attempts = @lostAttempts,
           available_at = @availableAt, result_bytes = @resultBytes,
           updated_at = @updatedAt WHERE id = @id`,
      ),
      listByState: this.db.prepare<[string, number, number], { seq: number; id: string }>(
        'SELECT seq, id FROM tasks WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      oldestAvailable: this.db.prepare<[number], Row>(
        `SELECT * FROM tasks WHERE state = 'not_started' AND available_at <= ? ORDER BY seq LIMIT 1`,
      ),
      expired: this.db.prepare<[number], Row>(
        `SELECT * FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT 100`,
      ),
    };
  }

  /** False when a task with this id or idempotency key exists already. */
  insert(task: NewTask, now: number): boolean {
    try {
      this.statements.insert.run({
        id: task.id,
        op: task.op,
        contentType: task.contentType,
        owner: task.owner ?? null,
        idempotencyKey: task.idempotencyKey ?? null,
        fingerprint: task.fingerprint ?? null,
        sourceBytes: task.sourceBytes,
        width: task.width ?? null,
        height: task.height ?? null,
        now,
      });
      this.addUsage(task.owner ?? null, task.sourceBytes);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return false;
      throw err;
    }
  }

  get(id: string): TaskRecord | undefined {
    const row = this.statements.get.get(id);
    return row && toRecord(row);
  }

  byIdempotencyKey(owner: string | undefined, key: string): TaskRecord | undefined {
    const row = this.statements.byIdempotencyKey.get(owner ?? '', key);
    return row && toRecord(row);
  }

  update(record: TaskRecord, change: StateUpdate, now: number): TaskRecord {
    const next: TaskRecord = {
      ...record,
      state: change.state,
      attempt: change.attempt ?? record.attempt,
      error: change.error === undefined ? record.error : change.error,
      leaseToken: change.leaseToken === undefined ? record.leaseToken : change.leaseToken,
      leaseExpiresAt: change.leaseExpiresAt === undefined ? record.leaseExpiresAt : change.leaseExpiresAt,
      attemptDeadline: change.attemptDeadline === undefined ? record.attemptDeadline : change.attemptDeadline,
      lostAttempts: change.lostAttempts ?? record.lostAttempts,
      availableAt: change.availableAt ?? record.availableAt,
      resultBytes: change.resultBytes ?? record.resultBytes,
      updatedAt: now,
    };
    this.statements.update.run({
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
    });
    if (next.resultBytes !== record.resultBytes) this.addUsage(next.owner, (next.resultBytes ?? 0) - (record.resultBytes ?? 0));
    return next;
  }

  /** Up to `limit` ids in a state after the cursor (a sequence number), oldest first. */
  listByState(state: TaskState, afterSeq: number, limit: number): Array<{ seq: number; id: string }> {
    return this.statements.listByState.all(state, afterSeq, limit);
  }

  /** The oldest not_started task whose retry backoff (if any) is over. */
  oldestAvailable(now: number): TaskRecord | undefined {
    const row = this.statements.oldestAvailable.get(now);
    return row && toRecord(row);
  }

  /** Bytes stored for an owner's tasks (null: the clients without an API key). */
  usage(owner: string | null): number {
    return this.statements.usage.get(owner ?? '')?.stored_bytes ?? 0;
  }

  private addUsage(owner: string | null, bytes: number): void {
    if (bytes !== 0) this.statements.addUsage.run({ owner: owner ?? '', bytes });
  }

  /** Ended tasks whose source is still stored, oldest first. */
  sourcesToDelete(limit: number): string[] {
    return this.statements.sourcesToDelete.all(limit).map((row) => row.id);
  }

  /** Ended tasks last changed before `before`, not expired yet, oldest first. */
  toExpire(before: number, limit: number): Array<{ id: string; attempt: number }> {
    return this.statements.toExpire.all(before, limit);
  }

  /** The source's bytes no longer count for the owner. */
  markSourceDeleted(record: TaskRecord): void {
    if (record.sourceDeleted || record.expiredAt !== null) return;
    this.statements.markSourceDeleted.run(record.id);
    this.addUsage(record.owner, -record.sourceBytes);
  }

  /** The task's bytes are gone: nothing of it counts any more, and reads answer 410. */
  markExpired(record: TaskRecord, now: number): void {
    if (record.expiredAt !== null) return;
    this.statements.markExpired.run(now, record.id);
    this.addUsage(record.owner, -((record.sourceDeleted ? 0 : record.sourceBytes) + (record.resultBytes ?? 0)));
  }

  /** In-progress tasks whose lease has run out (a batch at a time). */
  expired(now: number): TaskRecord[] {
    return this.statements.expired.all(now).map(toRecord);
  }

  /** Runs `fn` in one write transaction, taken at once so two claims never see the same task. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let next = version; next < MIGRATIONS.length; next += 1) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[next]!);
        this.db.pragma(`user_version = ${next + 1}`);
      })();
    }
  }

  ping(): void {
    this.db.prepare('SELECT 1').get();
  }

  close(): void {
    this.db.close();
  }
}
