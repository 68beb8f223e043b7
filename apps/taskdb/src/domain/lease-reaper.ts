import { AppError, type Logger } from '@pixelmill/kit';
import type { TaskService } from './task-service';

/**
 * Gives expired leases back to the queue every interval, one turn at a time (a slow turn delays
 * the next instead of piling up). While the database is out of reach it says so once and keeps
 * trying at the same pace, and says when it works again; the claims reap before they claim, so
 * nothing waits for it once the database is back.
 */
export class LeaseReaper {
  private timer: NodeJS.Timeout | undefined;
  private turn: Promise<void> = Promise.resolve();
  private stopped = false;
  private databaseLost = false;

  constructor(
    private readonly tasks: TaskService,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.schedule();
  }

  /** Stops the turns; resolves once the turn in hand has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.turn;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.turn = this.reap().finally(() => this.schedule());
    }, this.intervalMs);
  }

  private async reap(): Promise<void> {
    try {
      const reaped = await this.tasks.reapExpired();
      if (this.databaseLost) {
        this.databaseLost = false;
        this.logger.info('the database answers again; expired leases are reaped again');
      }
      if (reaped > 0) this.logger.info(`gave ${reaped} task(s) with an expired lease back to the queue`);
    } catch (err) {
      if (err instanceof AppError && err.code === 'unavailable') {
        if (!this.databaseLost) this.logger.warn(`could not reap expired leases: ${err.message}; trying again every ${this.intervalMs} ms`);
        this.databaseLost = true;
        return;
      }
      this.logger.error('could not reap expired leases', err);
    }
  }
}
