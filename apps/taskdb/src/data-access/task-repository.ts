import {
  givenParams,
  type ImageType,
  type Operation,
  type OperationParams,
  type Task,
  type TaskDetail,
  type TaskState,
} from '@pixelmill/contracts';

/** A task as stored, with the lease token that the API shows only to the claimer. */
export interface TaskRecord {
  seq: number;
  id: string;
  op: Operation;
  /** The operation's parameters (resize: width, height); null when it takes none. */
  params: OperationParams | null;
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

/** A row of `tasks` as both backends return it (times and sizes as numbers: ms since the epoch, bytes). */
export interface TaskRow {
  seq: number;
  id: string;
  op: Operation;
  /** JSON of the operation's parameters (see `storedParams`); null when it takes none, and in rows older than the column. */
  params: string | null;
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
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  source_deleted: number | boolean;
  expired_at: number | null;
}

/**
 * The operation's parameters as the `params` column keeps them: JSON of the parameters given, in
 * one order, so that two creates with the same parameters store the same text; null without any.
 * One text column rather than a column per parameter: taskdb never looks inside (the contract
 * checks them on the way in and out), and the next operation's parameters need no migration.
 */
export function storedParams(params: OperationParams | null | undefined): string | null {
  const given = givenParams(params);
  return Object.keys(given).length === 0 ? null : JSON.stringify(given);
}

export const toRecord = (row: TaskRow): TaskRecord => ({
  seq: row.seq,
  id: row.id,
  op: row.op,
  params: row.params === null ? null : (JSON.parse(row.params) as OperationParams),
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
  sourceDeleted: Boolean(row.source_deleted),
  expiredAt: row.expired_at,
});

export const toTask = (record: TaskRecord): Task => ({
  id: record.id,
  op: record.op,
  params: record.params,
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

/** A task as an operator sees it: with what of its bytes is still stored. */
export const toTaskDetail = (record: TaskRecord): TaskDetail => ({
  ...toTask(record),
  sourceStored: !record.sourceDeleted && record.expiredAt === null,
  expiredAt: record.expiredAt === null ? null : new Date(record.expiredAt).toISOString(),
});

/** The bytes a task's record counts for its owner: its source until deleted, its result, none once expired. */
export const countedBytes = (record: TaskRecord): number =>
  record.expiredAt !== null ? 0 : (record.sourceDeleted ? 0 : record.sourceBytes) + (record.resultBytes ?? 0);

/** How an attempt's lease ended: reported done or failed, given back by its holder, or run out. */
export type LeaseOutcome = 'finished' | 'failed' | 'released' | 'lost';

/** A row of `task_leases`: one per claim, so that who held a task when can be checked afterwards. */
export interface LeaseRecord {
  taskId: string;
  attempt: number;
  leaseToken: string;
  grantedAt: number;
  /** Moved on each extension. */
  expiresAt: number;
  /** Null while the attempt is held. */
  endedAt: number | null;
  outcome: LeaseOutcome | null;
}

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
  /** Ends the lease of the attempt in hand (its `task_leases` row) with this outcome. */
  leaseOutcome?: LeaseOutcome;
}

/** How the holder of an attempt ends it with a result or a failure. */
export interface AttemptEnd {
  state: 'finished' | 'failed';
  error: string | null;
  resultBytes?: number;
}

/** A claim's lease, decided by the domain; the repository counts the attempt. */
export interface LeaseGrant {
  leaseToken: string;
  leaseExpiresAt: number;
  attemptDeadline: number;
}

export interface NewTask {
  id: string;
  op: Operation;
  params?: OperationParams;
  contentType: ImageType;
  owner?: string;
  idempotencyKey?: string;
  fingerprint?: string;
  sourceBytes: number;
  width?: number;
  height?: number;
}

/** The record `update` writes: the change applied, unchanged fields kept. */
export function applyUpdate(record: TaskRecord, change: StateUpdate, now: number): TaskRecord {
  return {
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
}

/** What `insert` did: created the task, refused it for the owner's quota, or found its id or idempotency key taken. */
export type InsertResult = { kind: 'created'; record: TaskRecord } | { kind: 'over_quota'; storedBytes: number } | { kind: 'taken' };

/** The states a task has not ended in: a scrape counts these (ended tasks only grow, and master counts them as they end). */
export const OPEN_STATES = ['not_started', 'in_progress'] as const satisfies readonly TaskState[];
export type OpenState = (typeof OPEN_STATES)[number];

/** How many tasks wait or run, and since when the longest-waiting claimable task has been ready. */
export interface TaskCounts {
  byState: Record<OpenState, number>;
  /** The earliest `available_at` of a not_started task (ms since the epoch; later than now when all wait out a backoff); null when there is none. */
  oldestWaitingSince: number | null;
}

/** A row of the counts query: one per open state that holds tasks, each with the oldest waiting task's time. */
export interface TaskCountRow {
  state: OpenState;
  tasks: number;
  oldest_waiting_since: number | null;
}

/** The counts of the open states (0 for those without a row) from the counts query's rows. */
export function toCounts(rows: readonly TaskCountRow[]): TaskCounts {
  const byState: Record<OpenState, number> = { not_started: 0, in_progress: 0 };
  for (const row of rows) byState[row.state] = row.tasks;
  return { byState, oldestWaitingSince: rows[0]?.oldest_waiting_since ?? null };
}

/** What `claim` did, and whether some lease had run out when it looked. */
export interface ClaimResult {
  record: TaskRecord | undefined;
  leasesExpired: boolean;
}

/** The write both a repository and a transaction's store make. */
export interface TaskWriter {
  /**
   * Writes the change over `record` if the row is still as `record` shows it (state, attempt,
   * lease): a compare-and-set, so a change decided on a row another writer changed meanwhile is
   * never written. In the same statement it ends the lease in hand when `leaseOutcome` says so,
   * moves the lease row's expiry with `leaseExpiresAt`, and counts a new result's bytes for the
   * owner. Undefined when the row had changed.
   */
  update(record: TaskRecord, change: StateUpdate, now: number): Promise<TaskRecord | undefined>;
}

/**
 * Reads and writes of one transaction. Rows read here stay locked until it ends (PostgreSQL:
 * `FOR UPDATE`; SQLite: one writer at a time).
 */
export interface TaskStore extends TaskWriter {
  /** The task, locked for change. */
  getForUpdate(id: string): Promise<TaskRecord | undefined>;
  /** In-progress tasks whose lease has run out, oldest expiry first, locked; rows another transaction holds are skipped. */
  expired(now: number, limit: number): Promise<TaskRecord[]>;
  /** The source's bytes no longer count for the owner. */
  markSourceDeleted(record: TaskRecord): Promise<void>;
  /** The task's bytes are gone: nothing of it counts any more, and reads answer 410. */
  markExpired(record: TaskRecord, now: number): Promise<void>;
  /** Deletes the task's row and its leases; the bytes it counted (`countedBytes`) stop counting for its owner. */
  remove(record: TaskRecord): Promise<void>;
}

/**
 * Where tasks are kept: SQLite (`SqliteTaskRepository`) or PostgreSQL (`PostgresTaskRepository`).
 * Plain reads and atomic writes; the rules live in the domain (`TaskService`). Each write is one
 * statement on PostgreSQL, so that a lock (the owner's usage row, which every create and finish
 * of that owner touches) is held for that statement and its commit only.
 */
export interface TaskRepository extends TaskWriter {
  /**
   * Runs `fn` in one transaction, committed when it resolves and rolled back when it throws.
   * `fn` works through the store it is handed only, never through the repository.
   */
  transaction<T>(fn: (store: TaskStore) => Promise<T>): Promise<T>;
  get(id: string): Promise<TaskRecord | undefined>;
  byIdempotencyKey(owner: string | undefined, key: string): Promise<TaskRecord | undefined>;
  /**
   * Creates the task and counts its source's bytes for its owner, atomically; with `quotaBytes`,
   * only if the owner's stored bytes with them stay within it (creates of one owner are admitted
   * one at a time). Nothing is written when the id or idempotency key is taken.
   */
  insert(task: NewTask, now: number, quotaBytes?: number): Promise<InsertResult>;
  /**
   * Claims the oldest claimable task with the lease: a not_started task whose backoff is over
   * (`available_at <= now`), the earliest `available_at` first, then the earliest created. It
   * becomes in_progress with attempt + 1, and its lease is recorded in `task_leases`. Says too
   * whether some in-progress task's lease had run out, for the caller to reap.
   */
  claim(grant: LeaseGrant, now: number): Promise<ClaimResult>;
  /**
   * Ends the attempt held with `leaseToken` in one statement: a compare-and-set on the state
   * (in_progress) and the lease, that keeps the token (so a repeated report is recognised), clears
   * the lease, ends its row with the state as outcome and counts the result's bytes (an attempt in
   * progress has none yet). Undefined when the task is not in progress under that lease.
   */
  endAttempt(id: string, leaseToken: string, end: AttemptEnd, now: number): Promise<TaskRecord | undefined>;
  /** Whether some in-progress task's lease has run out (a cheap look before reaping). */
  anyLeaseExpired(now: number): Promise<boolean>;
  /**
   * The tasks waiting and running, and the oldest waiting one's time, in one statement: the open
   * states' entries of the `(state, seq)` index are counted (as many as the queue holds, however
   * many tasks ended before), the oldest waiting task is the first entry of the claimable index.
   */
  counts(): Promise<TaskCounts>;
  /** Up to `limit` ids in a state after the cursor (a sequence number), oldest first. */
  listByState(state: TaskState, afterSeq: number, limit: number): Promise<Array<{ seq: number; id: string }>>;
  /** The same page as `listByState`, the whole tasks. */
  listTasksByState(state: TaskState, afterSeq: number, limit: number): Promise<TaskRecord[]>;
  /** Bytes stored for an owner's tasks (null: the clients without an API key). */
  usage(owner: string | null): Promise<number>;
  /** Finished tasks whose source is still stored, oldest first (a failed task's is kept until it expires). */
  sourcesToDelete(limit: number): Promise<string[]>;
  /** Ended tasks last changed before `before`, not expired yet, oldest first. */
  toExpire(before: number, limit: number): Promise<Array<{ id: string; attempt: number }>>;
  /** The leases a task was granted, by attempt. */
  leases(taskId: string): Promise<LeaseRecord[]>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
