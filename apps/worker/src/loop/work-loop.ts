import type { Work } from '@pixelmill/contracts';
import { withRequestId, type Logger } from '@pixelmill/kit';
import type { MasterApi } from '../data-access/master-api';
import type { StorageApi } from '../data-access/storage-api';
import type { ImageCodec } from '../domain/image-codec';
import { transformImage } from '../domain/image-transformer';
import { LeaseLostError, PermanentWorkError } from '../domain/work-errors';
import { LeaseKeeper } from './lease-keeper';
import { backoffDelay, sleep, type BackoffOptions } from './timing';

export const LoopState = {
  Idle: 'idle',
  Polling: 'polling',
  Working: 'working',
  BackingOff: 'backing_off',
  Stopped: 'stopped',
} as const;
export type LoopState = (typeof LoopState)[keyof typeof LoopState];

export interface WorkLoopDeps {
  master: MasterApi;
  storage: StorageApi;
  codec: ImageCodec;
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
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * One worker loop: claim a task (long poll), do it, report it, again. Each turn has one
 * try/catch: what escapes a turn is transient (a service unreachable, a 5xx, an answer outside
 * the contract) and makes the loop back off; tasks that can never succeed are reported as failed
 * inside the turn. `stop()` stops claiming and waits for the task in hand.
 */
export class WorkLoop {
  private currentState: LoopState = LoopState.Idle;
  private stopping = false;
  private running: Promise<void> | undefined;
  private failuresInARow = 0;
  /** Aborted by stop(): cuts pauses short. */
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
   * Stops claiming work. Resolves true once the loop has ended, having finished (or given up) the
   * task in hand, or false when `timeoutMs` passes first; the task's lease then expires and
   * another worker takes it.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.wake.abort();
    if (!this.running) {
      this.currentState = LoopState.Stopped;
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.running.then(() => true), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.turn();
    }
    this.currentState = LoopState.Stopped;
  }

  private async turn(): Promise<void> {
    try {
      this.currentState = LoopState.Polling;
      const pollStarted = Date.now();
      // A poll in flight when stop() is called is awaited: work it brings is in hand and is done.
      const work = await this.deps.master.claimWork(this.options.pollWaitMs);
      this.failuresInARow = 0;
      if (!work) {
        await sleep(this.options.minPollIntervalMs - (Date.now() - pollStarted), this.wake.signal);
        return;
      }
      this.currentState = LoopState.Working;
      await withRequestId(`${work.id}.${work.attempt}`, () => this.handle(work));
    } catch (err) {
      this.failuresInARow += 1;
      const delayMs = backoffDelay(this.failuresInARow, this.options.backoff);
      this.deps.logger.warn(
        `turn failed (${this.failuresInARow} in a row), next try in ${delayMs} ms: ${describe(err)}`,
      );
      this.currentState = LoopState.BackingOff;
      await sleep(delayMs, this.wake.signal);
    }
  }

  /** Does one task under its lease. A task that can never succeed is reported failed; transient errors escape. */
  private async handle(work: Work): Promise<void> {
    const logger = this.deps.logger.child({ taskId: work.id, attempt: work.attempt });
    const lease = new LeaseKeeper(this.deps.master, work, logger, this.options.minHeartbeatMs);
    lease.start();
    try {
      try {
        await this.process(work, lease, logger);
      } catch (err) {
        if (!(err instanceof PermanentWorkError)) throw err;
        await this.deps.master.fail(work, err.message);
        logger.warn(`task failed: ${err.message}`);
      }
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
      logger.warn(`task abandoned, its lease is gone: ${err.message}`);
    } finally {
      await lease.stop();
    }
  }

  private async process(work: Work, lease: LeaseKeeper, logger: Logger): Promise<void> {
    const started = Date.now();
    const source = await this.deps.storage.downloadSource(work.id);
    lease.throwIfLost();
    const result = await transformImage(this.deps.codec, source, work.contentType, work.op);
    lease.throwIfLost();
    await this.deps.storage.uploadResult(work.id, result, work.contentType);
    lease.throwIfLost();
    await this.deps.master.finish(work);
    logger.info(`task finished: ${work.op} on ${work.contentType}`, {
      bytesIn: source.length,
      bytesOut: result.length,
      ms: Date.now() - started,
    });
  }
}
