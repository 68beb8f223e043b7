import type { Work } from '@pixelmill/contracts';
import { LeaseLostError, PermanentWorkError } from '../domain/work-errors';

/**
 * A claimed task while its loop works on it. It is cancelled as a whole (calls in flight
 * aborted, the next check throws) when its lease is lost, its time is up or the worker stops;
 * the first reason given wins.
 */
export class TaskInHand {
  private readonly controller = new AbortController();

  constructor(readonly work: Work) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  cancel(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Call between steps: a step that ended as the task was cancelled must not lead to the next. */
  throwIfCancelled(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /**
   * Why the work stopped, given what a step threw. A lost lease wins (nothing may be reported
   * then), a permanent failure comes next (it would fail again), then the cancellation, which
   * stands for the error of a call it cut short.
   */
  explain(err: unknown): unknown {
    const cancelled: unknown = this.controller.signal.aborted ? this.controller.signal.reason : undefined;
    if (err instanceof LeaseLostError) return err;
    if (cancelled instanceof LeaseLostError) return cancelled;
    if (err instanceof PermanentWorkError) return err;
    return cancelled ?? err;
  }
}
