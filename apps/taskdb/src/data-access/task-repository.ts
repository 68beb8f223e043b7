import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
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
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  seq: number;
  id: string;
  op: Operation;
  content_type: ImageType;
  state: TaskState;
  attempt: number;
  error: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

const toRecord = (row: Row): TaskRecord => ({
  seq: row.seq,
  id: row.id,
  op: row.op,
  contentType: row.content_type,
  state: row.state,
  attempt: row.attempt,
  error: row.error,
  leaseToken: row.lease_token,
  leaseExpiresAt: row.lease_expires_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const toTask = (record: TaskRecord): Task => ({
  id: record.id,
  op: record.op,
  contentType: record.contentType,
  state: record.state,
  attempt: record.attempt,
  error: record.error,
  createdAt: new Date(record.createdAt).toISOString(),
  updatedAt: new Date(record.updatedAt).toISOString(),
  leaseExpiresAt: record.leaseExpiresAt === null ? null : new Date(record.leaseExpiresAt).toISOString(),
});

export interface StateUpdate {
  state: TaskState;
  attempt?: number;
  error?: string | null;
  leaseToken?: string | null;
  leaseExpiresAt?: number | null;
}

/** Task rows in SQLite (WAL). Plain reads and writes; the rules live in the domain. */
export class TaskRepository {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a killed process; only a power loss may drop the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
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
      CREATE INDEX IF NOT EXISTS tasks_by_lease ON tasks (state, lease_expires_at);
    `);
    this.statements = {
      insert: this.db.prepare<[string, string, string, string, number, number]>(
        'INSERT INTO tasks (id, op, content_type, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      get: this.db.prepare<[string], Row>('SELECT * FROM tasks WHERE id = ?'),
      update: this.db.prepare(
        `UPDATE tasks SET state = @state, attempt = @attempt, error = @error, lease_token = @leaseToken,
           lease_expires_at = @leaseExpiresAt, updated_at = @updatedAt WHERE id = @id`,
      ),
      listByState: this.db.prepare<[string, number, number], { seq: number; id: string }>(
        'SELECT seq, id FROM tasks WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      oldestNotStarted: this.db.prepare<[], Row>(
        `SELECT * FROM tasks WHERE state = 'not_started' ORDER BY seq LIMIT 1`,
      ),
      oldestExpired: this.db.prepare<[number], Row>(
        `SELECT * FROM tasks WHERE state = 'in_progress' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT 1`,
      ),
    };
  }

  /** False when a task with this id exists already. */
  insert(task: { id: string; op: Operation; contentType: ImageType }, now: number): boolean {
    try {
      this.statements.insert.run(task.id, task.op, task.contentType, 'not_started', now, now);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') return false;
      throw err;
    }
  }

  get(id: string): TaskRecord | undefined {
    const row = this.statements.get.get(id);
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
      updatedAt: now,
    };
    this.statements.update.run({
      id: next.id,
      state: next.state,
      attempt: next.attempt,
      error: next.error,
      leaseToken: next.leaseToken,
      leaseExpiresAt: next.leaseExpiresAt,
      updatedAt: now,
    });
    return next;
  }

  /** Up to `limit` ids in a state after the cursor (a sequence number), oldest first. */
  listByState(state: TaskState, afterSeq: number, limit: number): Array<{ seq: number; id: string }> {
    return this.statements.listByState.all(state, afterSeq, limit);
  }

  oldestNotStarted(): TaskRecord | undefined {
    const row = this.statements.oldestNotStarted.get();
    return row && toRecord(row);
  }

  oldestExpired(now: number): TaskRecord | undefined {
    const row = this.statements.oldestExpired.get(now);
    return row && toRecord(row);
  }

  /** Runs `fn` in one write transaction, taken at once so two claims never see the same task. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  ping(): void {
    this.db.prepare('SELECT 1').get();
  }

  close(): void {
    this.db.close();
  }
}
