import { randomUUID } from 'node:crypto';
import {
  OPERATOR_TRANSITIONS,
  TASK_TRANSITIONS,
  type Claim,
  type ChangeStateBody,
  type CreateTaskBody,
  type Housekeeping,
  type HousekeepingDone,
  type Task,
  type TaskDetail,
  type TaskEvent,
  type TaskState,
} from '@pixelmill/contracts';
import { AppError, backoffDelay } from '@pixelmill/kit';
import {
  storedParams,
  toTask,
  toTaskDetail,
  type AttemptEnd,
  type StateUpdate,
  type TaskRecord,
  type TaskRepository,
} from '../data-access/task-repository';
import { TaskdbMetrics } from './taskdb-metrics';

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

/**
 * Times a change is decided again on the fresh row when another writer changed the task between
 * the read and the write (a worker's report racing a reaper, or its own retry): beyond, a 409.
 */
const WRITE_TRIES = 5;

const notFound = (id: string): AppError => new AppError('not_found', 404, `no task ${id}`);

const expired = (id: string): AppError =>
  new AppError('gone', 410, `image ${id} has expired: its files were deleted after the retention time`);

/** A task reaching finished or failed, as an event. */
const endedEvent = (record: TaskRecord): TaskEvent => ({
  kind: 'ended',
  id: record.id,
  state: record.state as 'finished' | 'failed',
  error: record.error,
});

/** The end of an attempt with a result or a failure, as reported. */
const attemptEnd = (state: 'finished' | 'failed', change: ChangeStateBody): AttemptEnd => ({
  state,
  error: state === 'failed' ? (change.error ?? 'failed without a reason') : null,
  ...(state === 'finished' && change.resultBytes !== undefined ? { resultBytes: change.resultBytes } : {}),
});

/** What a change decided on a task read: the task as it is (nothing to write), or a change to write over it. */
type Decision = { keep: TaskRecord } | { change: StateUpdate };

export interface TaskPage {
  ids: string[];
  nextCursor: string | null;
  /** With the `tasks` view: the tasks of `ids`. */
  tasks?: TaskDetail[];
}

/** What a page of a listing carries: the ids alone, or the tasks too. */
export type ListView = 'ids' | 'tasks';

/** A page of `limit` from rows read `limit + 1` at a time: the one more tells whether a next page exists. */
function pageOf<R extends { seq: number }>(rows: R[], limit: number): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  return { page, nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
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
  /** The tasks by state, the oldest waiting one, the leases found run out: for taskdb's `/metrics`. */
  readonly metrics: TaskdbMetrics;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly repository: TaskRepository,
    private readonly options: TaskServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.metrics = new TaskdbMetrics({ counts: () => repository.counts(), now: () => this.now() });
  }

  async create(input: CreateTaskBody): Promise<CreateResult> {
    for (let tries = 1; ; tries += 1) {
      if (input.idempotencyKey !== undefined) {
        const earlier = await this.repository.byIdempotencyKey(input.owner, input.idempotencyKey);
        if (earlier) return this.answerEarlier(earlier, input);
      }
      const result = await this.repository.insert(input, this.now(), input.quotaBytes);
      if (result.kind === 'created') {
        this.publish({ kind: 'created', id: input.id });
        return { task: toTask(result.record), created: true };
      }
      if (result.kind === 'over_quota') this.refuseOverQuota(input.owner ?? null, result.storedBytes, input.sourceBytes, input.quotaBytes!);
      // The id or the idempotency key is taken, maybe by a create that committed a moment ago.
      const existing = await this.repository.get(input.id);
      if (existing) {
        const same =
          existing.op === input.op &&
          storedParams(existing.params) === storedParams(input.params) &&
          existing.contentType === input.contentType &&
          existing.owner === (input.owner ?? null);
        if (!same) throw new AppError('conflict', 409, `task ${input.id} exists already, with other values`);
        return { task: toTask(existing), created: false };
      }
      // Else the idempotency key is taken: the next turn answers with its task (or creates, if that
      // task expired meanwhile, which frees its key).
      if (tries >= WRITE_TRIES) throw new AppError('conflict', 409, `task ${input.id} could not be created; try again`);
    }
  }

  /** A task; 410 once it expired (its bytes were deleted after the retention time). */
  async get(id: string): Promise<Task> {
    const record = await this.repository.get(id);
    if (!record) throw notFound(id);
    if (record.expiredAt !== null) throw expired(id);
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
    // The common case first, in one write: the holder of the attempt ends it.
    if (change.leaseToken !== undefined && (change.to === 'finished' || change.to === 'failed')) {
      const ended = await this.repository.endAttempt(id, change.leaseToken, attemptEnd(change.to, change), this.now());
      if (ended) {
        this.publish(endedEvent(ended));
        return toTask(ended);
      }
    }
    // Anything else (a repeated report, a stale lease, a release, an illegal move) is decided on the task as read.
    const { record, written } = await this.changeTask(id, (record, now): Decision => {
      // Repeating the end of the same attempt is a success, so a retried request does no harm.
      if (record.state === change.to && isFinal(change.to) && this.sameAttempt(record, change.leaseToken)) return { keep: record };
      if (change.to === 'in_progress') {
        throw new AppError('conflict', 409, 'a task enters in_progress only by a claim (POST /claims)');
      }
      this.assertTransition(record, change.to);
      if (record.state === 'in_progress' && change.leaseToken !== undefined && change.leaseToken !== record.leaseToken) {
        throw new AppError('conflict', 409, `the lease of task ${id} belongs to a newer attempt`);
      }
      if (change.to === 'not_started') {
        return { change: this.retryOrFail(record, change.error ?? 'the attempt was released', now, 'released') };
      }
      return {
        change: {
          ...attemptEnd(change.to, change),
          // Kept, so that the same holder repeating its report is recognised.
          leaseToken: record.leaseToken,
          leaseExpiresAt: null,
          attemptDeadline: null,
          leaseOutcome: change.to,
        },
      };
    });
    if (written && isFinal(record.state)) this.publish(endedEvent(record));
    return toTask(record);
  }

  /**
   * Claims the oldest task that is not started and not waiting out a retry backoff. Leases found
   * run out are reaped then, and the claim made again if it found nothing.
   */
  async claim(leaseMs: number): Promise<Claim | undefined> {
    const now = this.now();
    const first = await this.repository.claim(this.grant(leaseMs, now), now);
    let claimed = first.record;
    if (first.leasesExpired) {
      await this.reapExpired(now);
      claimed ??= (await this.repository.claim(this.grant(leaseMs, now), now)).record;
    }
    if (!claimed) return undefined;
    const task = toTask(claimed);
    return { ...task, leaseToken: claimed.leaseToken!, leaseExpiresAt: task.leaseExpiresAt! };
  }

  /** Extends the lease of the current attempt, never past the attempt's hard limit. */
  async extendLease(id: string, leaseToken: string, leaseMs: number): Promise<Task> {
    const { record } = await this.changeTask(id, (record, now): Decision => {
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
      return { change: { state: 'in_progress', leaseExpiresAt: Math.min(now + leaseMs, deadline) } };
    });
    return toTask(record);
  }

  /**
   * Gives tasks whose lease ran out back to the queue (after a backoff), or fails them on their
   * last attempt. Runs when a claim finds such leases, and periodically, so `isReady` shows it
   * soon. Safe with several instances reaping at once: each expired task is locked by one of them
   * and given back once; the others skip it.
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
          const next = await store.update(record, this.retryOrFail(record, reason, now, 'lost'), now);
          if (next) done.push(next);
        }
        return { found: expired.length, done };
      });
      reaped += batch.done.length;
      for (const record of batch.done) {
        this.metrics.leaseExpired(isFinal(record.state) ? 'failed' : 'retried');
        if (isFinal(record.state)) this.publish(endedEvent(record));
      }
      if (batch.found < REAP_BATCH || batch.done.length === 0) return reaped;
    }
  }

  /** A page of the tasks in a state, oldest first: their ids, or (`view` tasks) the tasks too. */
  async list(state: TaskState, limit: number, cursor?: string, view: ListView = 'ids'): Promise<TaskPage> {
    const afterSeq = cursor === undefined ? 0 : Number(cursor);
    if (view === 'tasks') {
      const { page, nextCursor } = pageOf(await this.repository.listTasksByState(state, afterSeq, limit + 1), limit);
      return { ids: page.map((record) => record.id), nextCursor, tasks: page.map(toTaskDetail) };
    }
    const { page, nextCursor } = pageOf(await this.repository.listByState(state, afterSeq, limit + 1), limit);
    return { ids: page.map((row) => row.id), nextCursor };
  }

  /**
   * An operator's retry (`OPERATOR_TRANSITIONS.retry`): a failed task whose source is still stored
   * goes back to not_started, claimable at once, its error cleared. Its attempt number goes on (each
   * attempt has its own result key and lease row); its lost attempts count from zero, so it has the
   * whole attempt limit again. Decided and written with the row locked, so that it never crosses
   * the task's expiry (`housekeepingDone` locks the row too). `endedAfter` refuses a task that
   * ended before it: housekeeping deletes the files of an expiring task before it records that.
   */
  async retry(id: string, endedAfter?: number): Promise<TaskDetail> {
    const { from, to } = OPERATOR_TRANSITIONS.retry;
    const retried = await this.repository.transaction(async (store) => {
      const record = await store.getForUpdate(id);
      if (!record) throw notFound(id);
      if (record.expiredAt !== null) throw expired(id);
      if (record.state !== from) {
        throw new AppError('conflict', 409, `task ${id} is ${record.state}: only a failed task can be retried`);
      }
      if (record.sourceDeleted) {
        throw new AppError(
          'conflict',
          409,
          `task ${id} cannot be retried: its image is no longer stored (deleted after the task ended); upload it again`,
        );
      }
      if (endedAfter !== undefined && record.updatedAt < endedAfter) {
        throw new AppError(
          'conflict',
          409,
          `task ${id} cannot be retried: it failed at ${new Date(record.updatedAt).toISOString()}, so near the end of its ` +
            'retention that its files may be being deleted; upload the image again',
        );
      }
      const now = this.now();
      const change: StateUpdate = {
        state: to,
        error: null,
        // The last attempt's token goes: a report of it repeated now is refused.
        leaseToken: null,
        leaseExpiresAt: null,
        attemptDeadline: null,
        lostAttempts: 0,
        availableAt: now,
      };
      const next = await store.update(record, change, now);
      // The row is locked: only a writer outside the rules could have changed it.
      if (!next) throw new AppError('conflict', 409, `task ${id} changed while it was being retried; try again`);
      return next;
    });
    // New work, as a created task is: waiting getWork calls claim it at once.
    this.publish({ kind: 'created', id });
    return toTaskDetail(retried);
  }

  /**
   * An operator's cancel (`OPERATOR_TRANSITIONS.cancel`): a waiting task ends failed with the
   * reason, and the ended event wakes the calls waiting for it. A task a worker holds is not
   * cancelled: its attempt ends by itself. Cancelling again with the same reason answers the task.
   */
  async cancel(id: string, reason: string): Promise<TaskDetail> {
    const { from, to } = OPERATOR_TRANSITIONS.cancel;
    const { record, written } = await this.changeTask(id, (record): Decision => {
      if (record.state === to && record.error === reason) return { keep: record };
      if (record.state !== from) {
        const held = record.state === 'in_progress' ? '; a worker holds it, and its attempt ends by itself' : '';
        throw new AppError('conflict', 409, `task ${id} is ${record.state}: only a waiting (not_started) task can be cancelled${held}`);
      }
      return { change: { state: to, error: reason } };
    });
    if (written) this.publish(endedEvent(record));
    return toTaskDetail(record);
  }

  /**
   * Deletes a task's record (its bytes are the caller's to delete first), and uncounts its bytes.
   * A task a worker holds is refused: the worker could still store a result no record names.
   */
  async remove(id: string): Promise<void> {
    await this.repository.transaction(async (store) => {
      const record = await store.getForUpdate(id);
      if (!record) throw notFound(id);
      if (record.state === 'in_progress') {
        throw new AppError('conflict', 409, `task ${id} is in_progress: a worker holds it; delete it once its attempt has ended`);
      }
      await store.remove(record);
    });
  }

  /** Capped exponential backoff with jitter before retry number `attempt` (1 = after the first attempt). */
  retryDelayMs(attempt: number): number {
    return backoffDelay(attempt, { initialMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs }, this.random);
  }

  /**
   * Reads the task, decides its change, and writes it if the task is still as read; when another
   * writer came first, decides again on the fresh row. `written` is false when the decision was
   * to keep the task as it is.
   */
  private async changeTask(
    id: string,
    decide: (record: TaskRecord, now: number) => Decision,
  ): Promise<{ record: TaskRecord; written: boolean }> {
    for (let tries = 1; ; tries += 1) {
      const record = await this.repository.get(id);
      if (!record) throw notFound(id);
      const now = this.now();
      const decision = decide(record, now);
      if ('keep' in decision) return { record: decision.keep, written: false };
      const next = await this.repository.update(record, decision.change, now);
      if (next) return { record: next, written: true };
      if (tries >= WRITE_TRIES) throw new AppError('conflict', 409, `task ${id} kept changing while it was being changed; try again`);
    }
  }

  private grant(leaseMs: number, now: number) {
    const attemptDeadline = now + this.options.attemptTimeoutMs;
    return { leaseToken: randomUUID(), leaseExpiresAt: Math.min(now + leaseMs, attemptDeadline), attemptDeadline };
  }

  /**
   * The end of the current attempt without a result. A lost attempt (lease expired) counts against
   * the limit; a released one does not, within CLAIMS_PER_ATTEMPT times the limit in all.
   */
  private retryOrFail(record: TaskRecord, reason: string, now: number, how: 'lost' | 'released'): StateUpdate {
    const lostAttempts = record.lostAttempts + (how === 'lost' ? 1 : 0);
    const ended = { leaseToken: null, leaseExpiresAt: null, attemptDeadline: null, lostAttempts, leaseOutcome: how };
    if (lostAttempts >= this.options.maxAttempts || record.attempt >= this.options.maxAttempts * CLAIMS_PER_ATTEMPT) {
      return { state: 'failed', error: `gave up after ${record.attempt} attempts: ${reason}`, ...ended };
    }
    return { state: 'not_started', error: reason, availableAt: now + this.retryDelayMs(record.attempt), ...ended };
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

  /** Called after the commit; a sink must not throw. */
  private publish(event: TaskEvent): void {
    this.options.events?.publish(event);
  }
}
