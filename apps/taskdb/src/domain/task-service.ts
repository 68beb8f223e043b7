import { randomUUID } from 'node:crypto';
import {
  TASK_TRANSITIONS,
  type Claim,
  type ChangeStateBody,
  type CreateTaskBody,
  type Housekeeping,
  type HousekeepingDone,
  type Task,
  type TaskEvent,
  type TaskState,
} from '@pixelmill/contracts';
import { AppError, backoffDelay } from '@pixelmill/kit';
import { toTask, type TaskRecord, type TaskRepository, type TaskStore } from '../data-access/task-repository';

const isFinal = (state: TaskState): boolean => TASK_TRANSITIONS[state].length === 0;

/**
 * Releases (a worker giving a task back on shutdown or a passing error) do not count against the
 * attempt limit, but a task is not claimed more than this many times the limit in all.
 */
export const CLAIMS_PER_ATTEMPT = 5;

export interface RetryPolicy {
  /** Attempts whose lease expires (worker gone, or too slow) before the task fails. */
  maxAttempts: number;
  /** Hard limit of one attempt, however often its lease is extended. */
  attemptTimeoutMs: number;
  /** Pause before the retry after the first attempt; doubles per attempt, capped, with jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** Where task events go once their transaction has committed (the events hub). */
export interface TaskEventSink {
  publish(event: TaskEvent): void;
}

export interface TaskServiceOptions extends RetryPolicy {
  now?: () => number;
  /** A number in [0, 1) for the jitter; injected by tests. */
  random?: () => number;
  /** Told of tasks really created, and of tasks reaching finished or failed, after the commit. */
  events?: TaskEventSink;
}

/** Expired leases reaped per transaction. */
const REAP_BATCH = 100;

const notFound = (id: string): AppError => new AppError('not_found', 404, `no task ${id}`);

/** A write under the row's lock finds the row as it was read; anything else is a bug worth a loud 500. */
function mustBeWritten(record: TaskRecord | undefined): TaskRecord {
  if (!record) throw new Error('a task changed while it was locked for change');
  return record;
}

/** Ended tasks as events; only tasks that reached a final state in this transaction are given. */
const endedEvents = (records: TaskRecord[]): TaskEvent[] =>
  records
    .filter((record) => record.state === 'finished' || record.state === 'failed')
    .map((record) => ({ kind: 'ended', id: record.id, state: record.state as 'finished' | 'failed', error: record.error }));

export interface TaskPage {
  ids: string[];
  nextCursor: string | null;
}

export interface CreateResult {
  task: Task;
  /** False when an earlier create with the same id or idempotency key is answered instead. */
  created: boolean;
}

/**
 * The task state machine: creation, transitions, claims with fenced leases, retries with
 * backoff within an attempt limit, and listings.
 */
export class TaskService {
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly repository: TaskRepository,
    private readonly options: TaskServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  async create(input: CreateTaskBody): Promise<CreateResult> {
    const result = await this.repository.transaction(async (store): Promise<CreateResult> => {
      if (input.idempotencyKey !== undefined) {
        const earlier = await store.byIdempotencyKey(input.owner, input.idempotencyKey);
        if (earlier) return this.answerEarlier(earlier, input);
      }
      const inserted = await store.insert(input, this.now());
      if (inserted) {
        // Counted first and checked after, in the same transaction: a refusal rolls both back.
        if (input.quotaBytes !== undefined && inserted.storedBytes > input.quotaBytes) {
          this.refuseOverQuota(input.owner ?? null, inserted.storedBytes - input.sourceBytes, input.sourceBytes, input.quotaBytes);
        }
        return { task: toTask(inserted.record), created: true };
      }
      // The id or the idempotency key is taken, maybe by a create that committed a moment ago.
      const existing = await store.getForUpdate(input.id);
      if (existing) {
        const same = existing.op === input.op && existing.contentType === input.contentType && existing.owner === (input.owner ?? null);
        if (!same) throw new AppError('conflict', 409, `task ${input.id} exists already, with other values`);
        return { task: toTask(existing), created: false };
      }
      const earlier = input.idempotencyKey === undefined ? undefined : await store.byIdempotencyKey(input.owner, input.idempotencyKey);
      if (!earlier) throw new Error(`task ${input.id} was neither created nor found`);
      return this.answerEarlier(earlier, input);
    });
    if (result.created) this.publish([{ kind: 'created', id: result.task.id }]);
    return result;
  }

  /** A task; 410 once it expired (its bytes were deleted after the retention time). */
  async get(id: string): Promise<Task> {
    const record = await this.repository.get(id);
    if (!record) throw notFound(id);
    if (record.expiredAt !== null) {
      throw new AppError('gone', 410, `image ${id} has expired: its files were deleted after the retention time`);
    }
    return toTask(record);
  }

  /** Bytes stored for an owner's tasks (undefined: the clients without an API key). */
  async usage(owner: string | undefined): Promise<{ owner: string | null; storedBytes: number }> {
    return { owner: owner ?? null, storedBytes: await this.repository.usage(owner ?? null) };
  }

  /**
   * What storage should delete next: the sources of ended tasks (a result, or a reason, is all
   * that is left to show), and every file of tasks that ended before `expireBefore`.
   */
  async housekeeping(expireBefore: number, limit: number): Promise<Housekeeping> {
    const [sources, expired] = await Promise.all([this.repository.sourcesToDelete(limit), this.repository.toExpire(expireBefore, limit)]);
    return { sources, expired };
  }

  /** Records what was deleted: the bytes stop counting against quotas, and expired tasks answer 410. */
  housekeepingDone(done: HousekeepingDone): Promise<{ sourcesDeleted: number; expired: number }> {
    return this.repository.transaction(async (store) => {
      const now = this.now();
      // Locked in one order, so that two reports of overlapping tasks cannot deadlock.
      for (const id of [...new Set([...done.sourcesDeleted, ...done.expired])].sort()) await store.getForUpdate(id);
      let sourcesDeleted = 0;
      let expired = 0;
      for (const id of done.sourcesDeleted) {
        const record = await store.getForUpdate(id);
        if (record && isFinal(record.state) && !record.sourceDeleted) {
          await store.markSourceDeleted(record);
          sourcesDeleted += 1;
        }
      }
      for (const id of done.expired) {
        const record = await store.getForUpdate(id);
        if (record && isFinal(record.state) && record.expiredAt === null) {
          await store.markExpired(record, now);
          expired += 1;
        }
      }
      return { sourcesDeleted, expired };
    });
  }

  async changeState(id: string, change: ChangeStateBody): Promise<Task> {
    const { record, reachedEnd } = await this.repository.transaction(async (store) => {
      const record = await this.mustGet(store, id);
      const now = this.now();
      // Repeating the end of the same attempt is a success, so a retried request does no harm.
      if (record.state === change.to && isFinal(change.to) && this.sameAttempt(record, change.leaseToken)) {
        return { record, reachedEnd: false };
      }
      if (change.to === 'in_progress') {
        throw new AppError('conflict', 409, 'a task enters in_progress only by a claim (POST /claims)');
      }
      this.assertTransition(record, change.to);
      if (record.state === 'in_progress' && change.leaseToken !== undefined && change.leaseToken !== record.leaseToken) {
        throw new AppError('conflict', 409, `the lease of task ${id} belongs to a newer attempt`);
      }
      if (change.to === 'not_started') {
        const next = mustBeWritten(await this.retryOrFail(store, record, change.error ?? 'the attempt was released', now, 'released'));
        return { record: next, reachedEnd: isFinal(next.state) };
      }
      const next = await store.update(
        record,
        {
          state: change.to,
          error: change.to === 'failed' ? (change.error ?? 'failed without a reason') : null,
          ...(change.to === 'finished' && change.resultBytes !== undefined ? { resultBytes: change.resultBytes } : {}),
          // Kept, so that the same holder repeating its report is recognised.
          leaseToken: record.leaseToken,
          leaseExpiresAt: null,
          attemptDeadline: null,
          leaseOutcome: change.to,
        },
        now,
      );
      return { record: mustBeWritten(next), reachedEnd: true };
    });
    if (reachedEnd) this.publish(endedEvents([record]));
    return toTask(record);
  }

  /** Claims the oldest task that is not started and not waiting out a retry backoff. */
  async claim(leaseMs: number): Promise<Claim | undefined> {
    const now = this.now();
    await this.reapExpired(now);
    const leaseToken = randomUUID();
    const attemptDeadline = now + this.options.attemptTimeoutMs;
    const claimed = await this.repository.claim(
      { leaseToken, leaseExpiresAt: Math.min(now + leaseMs, attemptDeadline), attemptDeadline },
      now,
    );
    if (!claimed) return undefined;
    const task = toTask(claimed);
    return { ...task, leaseToken, leaseExpiresAt: task.leaseExpiresAt! };
  }

  /** Extends the lease of the current attempt, never past the attempt's hard limit. */
  extendLease(id: string, leaseToken: string, leaseMs: number): Promise<Task> {
    return this.repository.transaction(async (store) => {
      const record = await this.mustGet(store, id);
      const now = this.now();
      if (record.state !== 'in_progress' || record.leaseToken !== leaseToken) {
        throw new AppError('conflict', 409, `task ${id} is not held with this lease (state ${record.state})`);
      }
      if (record.leaseExpiresAt !== null && record.leaseExpiresAt <= now) {
        throw new AppError('conflict', 409, `the lease of task ${id} has expired`);
      }
      const deadline = record.attemptDeadline ?? Number.POSITIVE_INFINITY;
      if (deadline <= now) {
        throw new AppError(
          'conflict',
          409,
          `attempt ${record.attempt} of task ${id} ran past its limit of ${this.options.attemptTimeoutMs} ms`,
        );
      }
      const next = await store.update(record, { state: 'in_progress', leaseExpiresAt: Math.min(now + leaseMs, deadline) }, now);
      return toTask(mustBeWritten(next));
    });
  }

  /**
   * Gives tasks whose lease ran out back to the queue (after a backoff), or fails them on their
   * last attempt. Runs before every claim and periodically, so `isReady` shows it soon. Safe with
   * several instances reaping at once: each expired task is locked by one of them and given back
   * once; the others skip it.
   */
  async reapExpired(now = this.now()): Promise<number> {
    if (!(await this.repository.anyLeaseExpired(now))) return 0;
    let reaped = 0;
    for (;;) {
      const batch = await this.repository.transaction(async (store) => {
        const expired = await store.expired(now, REAP_BATCH);
        const done: TaskRecord[] = [];
        for (const record of expired) {
          const reason = `the lease of attempt ${record.attempt} expired (worker gone or too slow)`;
          const next = await this.retryOrFail(store, record, reason, now, 'lost');
          if (next) done.push(next);
        }
        return { found: expired.length, done };
      });
      reaped += batch.done.length;
      this.publish(endedEvents(batch.done));
      if (batch.found < REAP_BATCH || batch.done.length === 0) return reaped;
    }
  }

  async list(state: TaskState, limit: number, cursor?: string): Promise<TaskPage> {
    const rows = await this.repository.listByState(state, cursor === undefined ? 0 : Number(cursor), limit + 1);
    const page = rows.slice(0, limit);
    return {
      ids: page.map((row) => row.id),
      nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null,
    };
  }

  /** Capped exponential backoff with jitter before retry number `attempt` (1 = after the first attempt). */
  retryDelayMs(attempt: number): number {
    return backoffDelay(attempt, { initialMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs }, this.random);
  }

  /**
   * Ends the current attempt without a result. A lost attempt (lease expired) counts against the
   * limit; a released one does not, within CLAIMS_PER_ATTEMPT times the limit in all. Undefined
   * when the task changed since it was read.
   */
  private retryOrFail(
    store: TaskStore,
    record: TaskRecord,
    reason: string,
    now: number,
    how: 'lost' | 'released',
  ): Promise<TaskRecord | undefined> {
    const lostAttempts = record.lostAttempts + (how === 'lost' ? 1 : 0);
    const ended = { leaseToken: null, leaseExpiresAt: null, attemptDeadline: null, lostAttempts, leaseOutcome: how };
    if (lostAttempts >= this.options.maxAttempts || record.attempt >= this.options.maxAttempts * CLAIMS_PER_ATTEMPT) {
      return store.update(record, { state: 'failed', error: `gave up after ${record.attempt} attempts: ${reason}`, ...ended }, now);
    }
    return store.update(
      record,
      { state: 'not_started', error: reason, availableAt: now + this.retryDelayMs(record.attempt), ...ended },
      now,
    );
  }

  /** Refuses a new task whose source would take the owner past its cap on stored bytes. */
  private refuseOverQuota(owner: string | null, stored: number, sourceBytes: number, quotaBytes: number): never {
    const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    throw new AppError(
      'quota_exceeded',
      429,
      `the storage quota of ${owner === null ? 'clients without an API key' : 'this API key'} is used up: ` +
        `${mb(stored)} MB of ${mb(quotaBytes)} MB stored, this image needs ${mb(sourceBytes)} MB more; ` +
        'space comes back as older images expire',
      { storedBytes: stored, quotaBytes, neededBytes: sourceBytes },
    );
  }

  /** The task an earlier create with the same idempotency key made, if it was made from the same input. */
  private answerEarlier(earlier: TaskRecord, input: CreateTaskBody): CreateResult {
    const differs =
      earlier.op !== input.op ||
      (earlier.fingerprint !== null && input.fingerprint !== undefined && earlier.fingerprint !== input.fingerprint);
    if (differs) {
      throw new AppError(
        'unprocessable_entity',
        422,
        `the Idempotency-Key "${input.idempotencyKey}" was used before with another image or operation ` +
          `(task ${earlier.id}); use a new key for a new upload`,
        { taskId: earlier.id },
      );
    }
    return { task: toTask(earlier), created: false };
  }

  private sameAttempt(record: TaskRecord, leaseToken: string | undefined): boolean {
    return leaseToken === undefined || leaseToken === record.leaseToken;
  }

  private assertTransition(record: TaskRecord, to: TaskState): void {
    if (!TASK_TRANSITIONS[record.state].includes(to)) {
      const allowed = TASK_TRANSITIONS[record.state];
      throw new AppError(
        'conflict',
        409,
        `task ${record.id} cannot go from ${record.state} to ${to}` +
          (allowed.length ? ` (allowed: ${allowed.join(', ')})` : ` (${record.state} is final)`),
      );
    }
  }

  private async mustGet(store: TaskStore, id: string): Promise<TaskRecord> {
    const record = await store.getForUpdate(id);
    if (!record) throw notFound(id);
    return record;
  }

  /** Called after the commit; a sink must not throw. */
  private publish(events: TaskEvent[]): void {
    for (const event of events) this.options.events?.publish(event);
  }
}
