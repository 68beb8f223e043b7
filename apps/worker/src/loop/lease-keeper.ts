import type { Work } from '@pixelmill/contracts';
import type { Logger } from '@pixelmill/kit';
import type { MasterApi } from '../data-access/master-api';
import { LeaseLostError } from '../domain/work-errors';

/** Least HTTP timeout of a heartbeat, however short the lease. */
const MIN_HEARTBEAT_TIMEOUT_MS = 1_000;

export interface LeaseKeeperOptions {
  /** Floor of the interval, against a flood of heartbeats when clocks disagree. */
  minIntervalMs: number;
  /** Called once when master refuses a heartbeat: the task is no longer ours. */
  onLost: (err: LeaseLostError) => void;
}

/**
 * Keeps the lease of the task in hand alive with heartbeats, one every third of the time left on
 * the lease (10 s of a 30 s lease), so that two can fail before it expires. A heartbeat may take
 * a quarter of the time left, so a hung one cannot outlive the lease; a failed one is retried
 * sooner (less time is left); a refused one means the task is no longer ours. The result URL
 * expires with the lease: each heartbeat's new one replaces `work.resultUrl`, which the upload reads.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly stopped = new AbortController();
  private leaseExpiresAt: string;

  constructor(
    private readonly master: MasterApi,
    private readonly work: Work,
    private readonly logger: Logger,
    private readonly options: LeaseKeeperOptions,
  ) {
    this.leaseExpiresAt = work.leaseExpiresAt;
  }

  start(): void {
    this.schedule();
  }

  /** Stops beating; a heartbeat in flight is cancelled, and resolves once it has let go. */
  async stop(): Promise<void> {
    this.stopped.abort();
    clearTimeout(this.timer);
    await this.inFlight;
  }

  private remainingMs(): number {
    return Date.parse(this.leaseExpiresAt) - Date.now();
  }

  private schedule(): void {
    if (this.stopped.signal.aborted) return;
    this.timer = setTimeout(
      () => {
        this.inFlight = this.beat();
      },
      Math.max(this.options.minIntervalMs, Math.floor(this.remainingMs() / 3)),
    );
  }

  private async beat(): Promise<void> {
    try {
      const extended = await this.master.heartbeat(this.work, {
        signal: this.stopped.signal,
        timeoutMs: Math.max(MIN_HEARTBEAT_TIMEOUT_MS, Math.floor(this.remainingMs() / 4)),
      });
      this.leaseExpiresAt = extended.leaseExpiresAt;
      if (extended.resultUrl !== undefined) this.work.resultUrl = extended.resultUrl;
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      if (err instanceof LeaseLostError) {
        this.options.onLost(err);
        return;
      }
      this.logger.warn(`heartbeat failed, the lease runs until ${this.leaseExpiresAt}: ${(err as Error).message}`);
    }
    this.schedule();
  }
}
