import type { Work } from '@pixelmill/contracts';
import type { Logger } from '@pixelmill/kit';
import type { MasterApi } from '../data-access/master-api';
import { LeaseLostError } from '../domain/work-errors';

/**
 * Keeps the lease of the task in hand alive with heartbeats, one every third of the time left on
 * the lease, so that two can fail before it expires. A failed heartbeat is retried sooner (less
 * time is left); a refused one means the task is no longer ours and the work is abandoned.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private stopped = false;
  private leaseExpiresAt: string;
  private lost: LeaseLostError | undefined;

  constructor(
    private readonly master: MasterApi,
    private readonly work: Work,
    private readonly logger: Logger,
    /** Floor of the interval, against a flood of heartbeats when clocks disagree. */
    private readonly minIntervalMs: number,
  ) {
    this.leaseExpiresAt = work.leaseExpiresAt;
  }

  start(): void {
    this.schedule();
  }

  /** Throws the LeaseLostError master answered a heartbeat with, if any. */
  throwIfLost(): void {
    if (this.lost) throw this.lost;
  }

  /** Stops beating; resolves once a heartbeat in flight has been answered. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  private schedule(): void {
    if (this.stopped) return;
    const remainingMs = Date.parse(this.leaseExpiresAt) - Date.now();
    this.timer = setTimeout(() => {
      this.inFlight = this.beat();
    }, Math.max(this.minIntervalMs, Math.floor(remainingMs / 3)));
  }

  private async beat(): Promise<void> {
    try {
      this.leaseExpiresAt = await this.master.heartbeat(this.work);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.lost = err;
        return;
      }
      this.logger.warn(`heartbeat failed, the lease runs until ${this.leaseExpiresAt}: ${(err as Error).message}`);
    }
    this.schedule();
  }
}
