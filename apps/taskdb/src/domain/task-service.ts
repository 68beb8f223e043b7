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
import { toTask, type TaskRecord, type TaskRepository } from '../data-access/task-repository';

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

export interface TaskServiceOptions extends RetryPolicy {
  now?: () => number;
  /** A number in [0, 1) for the jitter; injected by tests. */
  random?: () => number;
  /** Told, once committed, of each task created and of each that reached finished or failed. */
  events?: { publish(event: TaskEvent): void };
}

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
  /** Events of the transaction in progress, published once it commits. */
  private pending: TaskEvent[] | undefined;

  constructor(
    private readonly repository: TaskRepository,
    private readonly options: TaskServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  create(input: CreateTaskBody): CreateResult {
    return this.transaction(() => {
      if (input.idempotencyKey !== undefined) {
        const earlier = this.repository.byIdempotencyKey(input.owner, input.idempotencyKey);
        if (earlier) {
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
      }
      if (input.quotaBytes !== undefined) this.checkQuota(input.owner ?? null, input.sourceBytes, input.quotaBytes);
      if (this.repository.insert(input, this.now())) {
        this.pending?.push({ kind: 'created', id: input.id });
        return { task: toTask(this.mustGet(input.id)), created: true };
      }
      const existing = this.mustGet(input.id);
      const same = existing.op === input.op && existing.contentType === input.contentType && existing.owner === (input.owner ?? null);
      if (!same) throw new AppError('conflict', 409, `task ${input.id} exists already, with other values`);
      return { task: toTask(existing), created: false };
    });
  }

  /** A task; 410 once it expired (its bytes were deleted after the retention time). */
  get(id: string): Task {
    const record = this.mustGet(id);
    if (record.expiredAt !== null) {
      throw new AppError('gone', 410, `image ${id} has expired: its files were deleted after the retention time`);
    }
    return toTask(record);
  }

  /** Bytes stored for an owner's tasks (undefined: the clients without an API key). */
  usage(owner: string | undefined): { owner: string | null; storedBytes: number } {
    return { owner: owner ?? null, storedBytes: this.repository.usage(owner ?? null) };
  }

  /**
   * What storage should delete next: the sources of ended tasks (a result, or a reason, is all
   * that is left to show), and every file of tasks that ended before `expireBefore`.
   */
  housekeeping(expireBefore: number, limit: number): Housekeeping {
    return { sources: this.repository.sourcesToDelete(limit), expired: this.repository.toExpire(expireBefore, limit) };
  }

  /** Records what was deleted: the bytes stop counting against quotas, and expired tasks answer 410. */
  housekeepingDone(done: HousekeepingDone): { sourcesDeleted: number; expired: number } {
    return this.repository.transaction(() => {
      const now = this.now();
      let sourcesDeleted = 0;
      let expired = 0;
      for (const id of done.sourcesDeleted) {
        const record = this.repository.get(id);
        if (record && isFinal(record.state) && !record.sourceDeleted) {
          this.repository.markSourceDeleted(record);
          sourcesDeleted += 1;
        }
      }
      for (const id of done.expired) {
        const record = this.repository.get(id);
        if (record && isFinal(record.state) && record.expiredAt === null) {
          this.repository.markExpired(record, now);
          expired += 1;
        }
      }
      return { sourcesDeleted, expired };
    });
  }

  changeState(id: string, change: ChangeStateBody): Task {
    return this.transaction(() => {
      const record = this.mustGet(id);
      const now = this.now();
      // Repeating the end of the same attempt is a success, so a retried request does no harm.
      if (record.state === change.to && isFinal(change.to) && this.sameAttempt(record, change.leaseToken)) {
        return toTask(record);
      }
      if (change.to === 'in_progress') {
        throw new AppError('conflict', 409, 'a task enters in_progress only by a claim (POST /claims)');
      }
      this.assertTransition(record, change.to);
      if (record.state === 'in_progress' && change.leaseToken !== undefined && change.leaseToken !== record.leaseToken) {
        throw new AppError('conflict', 409, `the lease of task ${id} belongs to a newer attempt`);
      }
      if (change.to === 'not_started') {
        return toTask(this.retryOrFail(record, change.error ?? 'the attempt was released', now, 'released'));
      }
      return toTask(
        this.recordEnd(
          this.repository.update(
            record,
            {
              state: change.to,
              error: change.to === 'failed' ? (change.error ?? 'failed without a reason') : null,
              ...(change.to === 'finished' && change.resultBytes !== undefined ? { resultBytes: change.resultBytes } : {}),
              // Kept, so that the same holder repeating its report is recognised.
              leaseToken: record.leaseToken,
              leaseExpiresAt: null,
              attemptDeadline: null,
            },
            now,
          ),
        ),
      );
    });
  }

  /** Claims the oldest task that is not started and not waiting out a retry backoff. */
  claim(leaseMs: number): Claim | undefined {
    return this.transaction(() => {
      const now = this.now();
      this.reapExpired(now);
      const record = this.repository.oldestAvailable(now);
      if (!record) return undefined;
      const leaseToken = randomUUID();
      const attemptDeadline = now + this.options.attemptTimeoutMs;
      const claimed = this.repository.update(
        record,
        {
          state: 'in_progress',
          attempt: record.attempt + 1,
          leaseToken,
          leaseExpiresAt: Math.min(now + leaseMs, attemptDeadline),
          attemptDeadline,
        },
        now,
      );
      const task = toTask(claimed);
      return { ...task, leaseToken, leaseExpiresAt: task.leaseExpiresAt! };
    });
  }

  /** Extends the lease of the current attempt, never past the attempt's hard limit. */
  extendLease(id: string, leaseToken: string, leaseMs: number): Task {
    return this.repository.transaction(() => {
      const record = this.mustGet(id);
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
      return toTask(this.repository.update(record, { state: 'in_progress', leaseExpiresAt: Math.min(now + leaseMs, deadline) }, now));
    });
  }

  /**
   * Gives tasks whose lease ran out back to the queue (after a backoff), or fails them on their
   * last attempt. Runs before every claim and periodically, so `isReady` shows it soon.
   */
  reapExpired(now = this.now()): number {
    return this.transaction(() => {
      let reaped = 0;
      for (;;) {
        const expired = this.repository.expired(now);
        if (expired.length === 0) return reaped;
        for (const record of expired) {
          this.retryOrFail(record, `the lease of attempt ${record.attempt} expired (worker gone or too slow)`, now, 'lost');
          reaped += 1;
        }
      }
    });
  }

  list(state: TaskState, limit: number, cursor?: string): TaskPage {
    const rows = this.repository.listByState(state, cursor === undefined ? 0 : Number(cursor), limit + 1);
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
   * limit; a released one does not, within CLAIMS_PER_ATTEMPT times the limit in all.
   */
  private retryOrFail(record: TaskRecord, reason: string, now: number, how: 'lost' | 'released'): TaskRecord {
    const lostAttempts = record.lostAttempts + (how === 'lost' ? 1 : 0);
    const ended = { leaseToken: null, leaseExpiresAt: null, attemptDeadline: null, lostAttempts };
    if (lostAttempts >= this.options.maxAttempts || record.attempt >= this.options.maxAttempts * CLAIMS_PER_ATTEMPT) {
      return this.recordEnd(
        this.repository.update(record, { state: 'failed', error: `gave up after ${record.attempt} attempts: ${reason}`, ...ended }, now),
      );
    }
    return this.repository.update(
      record,
      { state: 'not_started', error: reason, availableAt: now + this.retryDelayMs(record.attempt), ...ended },
      now,
    );
  }

  /** Refuses a new task whose source would take the owner past its cap on stored bytes. */
  private checkQuota(owner: string | null, sourceBytes: number, quotaBytes: number): void {
    const stored = this.repository.usage(owner);
    if (stored + sourceBytes <= quotaBytes) return;
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

  /**
   * Runs `fn` in one transaction and publishes the events it recorded once it committed (none
   * when it threw); a transaction inside another leaves that to the outer one.
   */
  private transaction<T>(fn: () => T): T {
    if (this.pending !== undefined) return this.repository.transaction(fn);
    this.pending = [];
    try {
      const result = this.repository.transaction(fn);
      for (const event of this.pending) this.options.events?.publish(event);
      return result;
    } finally {
      this.pending = undefined;
    }
  }

  /** Records the end of a task (finished or failed) for the transaction's events. */
  private recordEnd(record: TaskRecord): TaskRecord {
    if (record.state === 'finished' || record.state === 'failed') {
      this.pending?.push({ kind: 'ended', id: record.id, state: record.state, error: record.error });
    }
    return record;
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

  private mustGet(id: string): TaskRecord {
    const record = this.repository.get(id);
    if (!record) throw new AppError('not_found', 404, `no task ${id}`);
    return record;
  }
}
