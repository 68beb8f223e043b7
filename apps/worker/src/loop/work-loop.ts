import type { StorageReceipt, Work } from '@pixelmill/contracts';
import { backoffDelay, sleep, withRequestId, type BackoffOptions, type Logger } from '@pixelmill/kit';
import type { MasterApi } from '../data-access/master-api';
import type { StorageApi } from '../data-access/storage-api';
import { planDecode, type DecodeLimits } from '../domain/decode-plan';
import { LeaseLostError, PermanentWorkError, WorkGivenBackError } from '../domain/work-errors';
import type { WorkerMetrics } from '../status/worker-metrics';
import type { TransformRunner } from '../threads/transform-pool';
import type { FreeSlots, Slot } from './free-slots';
import { LeaseKeeper } from './lease-keeper';
import type { MemoryBudget } from './memory-budget';
import { TaskInHand } from './task-in-hand';

export const LoopState = {
  Idle: 'idle',
  /** Every transform thread is promised to a task: no claim until one is free. */
  WaitingForSlot: 'waiting_for_slot',
  Polling: 'polling',
  Working: 'working',
  /** A task in hand waits until its image fits in the memory the running ones left. */
  WaitingForMemory: 'waiting_for_memory',
  BackingOff: 'backing_off',
  Stopped: 'stopped',
} as const;
export type LoopState = (typeof LoopState)[keyof typeof LoopState];

export interface WorkLoopDeps {
  master: MasterApi;
  storage: StorageApi;
  /** Runs the CPU part of a task (decode, operation, encode) in a thread. */
  transformer: Pick<TransformRunner, 'run'>;
  /** Shared by the loops of a worker: one per thread. */
  slots: FreeSlots;
  /** Shared by the loops of a worker: WORKER_MEMORY_MB. */
  memory: MemoryBudget;
  /** Checked on each source before it waits for memory: an image that breaks one fails at once. */
  limits: DecodeLimits;
  /** Shared by the loops of a worker: how each task ended, and its transform's time. */
  metrics: WorkerMetrics;
  logger: Logger;
}

export interface WorkLoopOptions {
  /** Long poll sent to master as getWork's waitMs. */
  pollWaitMs: number;
  backoff: BackoffOptions;
  /**
   * Least time between two polls that found no work. A master that answers 204 at once (it
   * ignores waitMs, or is shutting down) would otherwise be asked in a tight loop.
   */
  minPollIntervalMs: number;
  /** Floor of the heartbeat interval. */
  minHeartbeatMs: number;
  /** The longest one attempt may take before the task is given back. */
  attemptTimeoutMs: number;
  /**
   * Give the slot back when the task's thread starts encoding rather than when it is done, so
   * that the next task is claimed and downloaded while this one encodes.
   */
  prefetch: boolean;
}

/**
 * After the grace period of stop(), how long the loop may take to give its task back before
 * stop() resolves anyway. The process's forced exit must leave at least this much.
 */
export const RELEASE_GRACE_MS = 3_000;

/** A task done: its figures for the log, and storage's receipt of the result for master. */
interface Done {
  stats: Record<string, number>;
  receipt?: StorageReceipt;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One worker loop: take a free slot, claim a task (long poll), do it, report it, again. Each
 * turn has one try/catch: what escapes a turn is transient (a service unreachable, a 5xx, an
 * answer outside the contract) and makes the loop back off, holding its slot if it still has
 * it. The slot goes back as soon as the task's thread is done with it (or, prefetching, starts
 * encoding): the upload and the report no longer keep a thread idle, and another loop claims
 * meanwhile. A task in hand ends in exactly one of four ways:
 * finished; failed (it can never succeed); released (a passing error, too slow, or shutdown: it
 * is retried later); or abandoned without a word when its lease is gone.
 * `stop()` stops claiming at once and waits for the task in hand, then releases it.
 */
export class WorkLoop {
  private currentState: LoopState = LoopState.Idle;
  private stopping = false;
  private running: Promise<void> | undefined;
  private failuresInARow = 0;
  private inHand: TaskInHand | undefined;
  /** Aborted by stop(): cuts a long poll and pauses short. */
  private readonly wake = new AbortController();

  constructor(
    private readonly deps: WorkLoopDeps,
    private readonly options: WorkLoopOptions,
  ) {}

  get state(): LoopState {
    return this.currentState;
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * Stops claiming work (a pending long poll is aborted). Resolves true once the loop has ended,
   * having finished (or failed) the task in hand within `timeoutMs`. Past that, the task is
   * given back to master at once (workReleased), so that another worker can take it without
   * waiting for the lease to expire, and it resolves false.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.wake.abort();
    if (!this.running) {
      this.currentState = LoopState.Stopped;
      return true;
    }
    if (await settlesWithin(this.running, timeoutMs)) return true;
    this.inHand?.cancel(new WorkGivenBackError(`the worker is shutting down and the task was not done within ${timeoutMs} ms`));
    await settlesWithin(this.running, RELEASE_GRACE_MS);
    return false;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.turn();
    }
    this.currentState = LoopState.Stopped;
  }

  private async turn(): Promise<void> {
    this.currentState = LoopState.WaitingForSlot;
    const slot = await this.deps.slots.take(this.wake.signal);
    if (!slot) return;
    try {
      this.currentState = LoopState.Polling;
      const pollStarted = Date.now();
      const work = await this.deps.master.claimWork(this.options.pollWaitMs, { signal: this.wake.signal });
      this.failuresInARow = 0;
      if (!work) {
        await sleep(this.options.minPollIntervalMs - (Date.now() - pollStarted), this.wake.signal);
        return;
      }
      // Work that arrived as stop() was called is in hand all the same: it is done, or released.
      this.currentState = LoopState.Working;
      await withRequestId(`${work.id}.${work.attempt}`, () => this.handle(work, slot));
    } catch (err) {
      // A poll cut short by stop(), or the last task's error (already logged with its release).
      if (this.stopping) return;
      this.failuresInARow += 1;
      const delayMs = backoffDelay(this.failuresInARow, this.options.backoff);
      this.deps.logger.warn(`turn failed (${this.failuresInARow} in a row), next try in ${delayMs} ms: ${describe(err)}`);
      this.currentState = LoopState.BackingOff;
      await sleep(delayMs, this.wake.signal);
    } finally {
      slot.release();
    }
  }

  /**
   * Does one task under its lease and reports it. A transient error is thrown after the task
   * was released, so that the loop backs off.
   */
  private async handle(work: Work, slot: Slot): Promise<void> {
    const logger = this.deps.logger.child({ taskId: work.id, attempt: work.attempt });
    const task = new TaskInHand(work);
    const lease = new LeaseKeeper(this.deps.master, work, logger, {
      minIntervalMs: this.options.minHeartbeatMs,
      onLost: (err) => task.cancel(err),
    });
    const { attemptTimeoutMs } = this.options;
    const overtime = setTimeout(
      () => task.cancel(new WorkGivenBackError(`the attempt took longer than ATTEMPT_TIMEOUT_MS (${attemptTimeoutMs} ms)`)),
      attemptTimeoutMs,
    );
    this.inHand = task;
    lease.start();
    let problem: unknown;
    let done: Done | undefined;
    try {
      done = await this.process(task, slot);
    } catch (err) {
      problem = task.explain(err);
    } finally {
      clearTimeout(overtime);
      await lease.stop();
      this.inHand = undefined;
    }

    if (!(problem instanceof LeaseLostError)) {
      try {
        if (done) {
          await this.deps.master.finish(work, done.receipt);
          this.deps.metrics.taskFinished();
          logger.info(`task finished: ${work.op} on ${work.contentType}`, done.stats);
          return;
        }
        if (problem instanceof PermanentWorkError) {
          await this.deps.master.fail(work, problem.message);
          this.deps.metrics.taskFailed(problem);
          logger.warn(`task failed: ${problem.message}`);
          return;
        }
      } catch (err) {
        // The report did not get through: the task is released instead, unless it was lost.
        problem = err;
      }
    }
    if (problem instanceof LeaseLostError) {
      this.deps.metrics.taskAbandoned();
      logger.warn(`task abandoned, its lease is gone: ${problem.message}`);
      return;
    }
    await this.release(work, describe(problem), logger);
    if (!(problem instanceof WorkGivenBackError)) throw problem;
  }

  /**
   * Downloads, checks the image's limits and waits until its memory fits, transforms in a thread
   * and uploads; checks between the steps that the task is still ours to do. A cancelled transform
   * is dropped at once (its thread is replaced).
   */
  private async process(task: TaskInHand, slot: Slot): Promise<Done> {
    const { work, signal } = task;
    const started = Date.now();
    const source = await this.deps.storage.downloadSource(work, signal);
    task.throwIfCancelled();
    const bytesIn = source.length; // the source moves to the thread: empty afterwards
    const { memoryBytes } = planDecode(source, work.contentType, this.deps.limits, work.op, work.params);
    this.currentState = LoopState.WaitingForMemory;
    const waitStarted = Date.now();
    const memory = await this.deps.memory.take(memoryBytes, signal);
    if (!memory) throw signal.reason; // given nothing: the task was cancelled while it waited
    const memoryWaitMs = Date.now() - waitStarted;
    this.currentState = LoopState.Working;
    const output = await this.deps.transformer
      .run(
        { source, contentType: work.contentType, op: work.op, params: work.params },
        { signal, onEncoding: this.options.prefetch ? () => slot.release() : undefined },
      )
      .finally(() => {
        memory.release();
        slot.release();
      });
    // A transform done is a sample, whatever becomes of its task.
    this.deps.metrics.transformed(work.op, work.contentType, output.timings);
    task.throwIfCancelled();
    const receipt = await this.deps.storage.uploadResult(work, output.bytes, signal);
    task.throwIfCancelled();
    const { timings } = output;
    const stats = {
      bytesIn,
      bytesOut: output.bytes.length,
      ms: Date.now() - started,
      memoryMb: Math.ceil(memoryBytes / 2 ** 20),
      memoryWaitMs,
      queuedMs: Math.round(output.queuedMs),
      decodeMs: Math.round(timings.decodeMs),
      operationMs: Math.round(timings.operationMs),
      encodeMs: Math.round(timings.encodeMs),
    };
    return { stats, receipt };
  }

  /** Gives the task back at once. If master cannot be told, the lease expires instead: logged, not thrown. */
  private async release(work: Work, reason: string, logger: Logger): Promise<void> {
    try {
      await this.deps.master.release(work, reason);
      this.deps.metrics.taskReleased();
      logger.warn(`task released: ${reason}`);
    } catch (err) {
      // Master did not take it back: the task is retried once its lease expires, as if this worker had died.
      this.deps.metrics.taskAbandoned();
      if (err instanceof LeaseLostError) logger.warn(`task abandoned, its lease is gone: ${err.message}`);
      else logger.warn(`could not release the task (${reason}); its lease expires at ${work.leaseExpiresAt} or later: ${describe(err)}`);
    }
  }
}
