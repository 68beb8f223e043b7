import { Counter, Histogram, Registry } from '@pixelmill/kit';
import type { TaskState } from '@pixelmill/contracts';

/** What an operator does to a task through master's admin routes. */
export const ADMIN_ACTIONS = ['retry', 'cancel', 'delete'] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** Attempts a task may take: 1 to MAX_ATTEMPTS (3 by default) lost ones, more with releases. */
const ATTEMPT_BUCKETS = [1, 2, 3, 5, 10, 20];

/**
 * What this master did with tasks, counted where it does it. Each master counts its own: the
 * stack's figure is the sum over masters. Lease expiries are not here: taskdb's reaper sees them.
 */
export class MasterMetrics {
  /** Served at master's `/metrics`. */
  readonly registry = new Registry();
  private readonly created = new Counter({
    name: 'pixelmill_tasks_created_total',
    help: 'Tasks created from uploads to this master (an upload repeated with its Idempotency-Key is not a new one)',
    registers: [this.registry],
  });
  private readonly claims = new Counter({
    name: 'pixelmill_task_claims_total',
    help: 'Tasks this master handed to workers: each claim starts an attempt',
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: 'pixelmill_tasks_finished_total',
    help: "Tasks finished through this master: a worker's result accepted",
    registers: [this.registry],
  });
  private readonly failed = new Counter({
    name: 'pixelmill_tasks_failed_total',
    help: 'Tasks failed through this master: reported failed by their worker, or given back once too often',
    registers: [this.registry],
  });
  private readonly released = new Counter({
    name: 'pixelmill_task_releases_total',
    help: 'Attempts given back by their worker through this master (shutdown, a passing error): the task is retried',
    registers: [this.registry],
  });
  private readonly attempts = new Histogram({
    name: 'pixelmill_task_attempts',
    help: 'Attempts a task took, observed as it finishes or fails through this master',
    buckets: ATTEMPT_BUCKETS,
    registers: [this.registry],
  });
  private readonly adminActions = new Counter<'action'>({
    name: 'pixelmill_master_admin_actions_total',
    help: "Operators' actions on tasks done through this master's admin routes: retry, cancel, delete",
    labelNames: ['action'],
    registers: [this.registry],
  });

  constructor() {
    // Each action is shown from the start, at 0: a rate over a series that appears later misses its first count.
    for (const action of ADMIN_ACTIONS) this.adminActions.inc({ action }, 0);
  }

  taskCreated(): void {
    this.created.inc();
  }

  taskClaimed(): void {
    this.claims.inc();
  }

  /** An operator's action on a task, done. */
  adminAction(action: AdminAction): void {
    this.adminActions.inc({ action });
  }

  /** An attempt ended through this master, leaving its task in `state`. */
  attemptEnded(state: TaskState, attempt: number): void {
    switch (state) {
      case 'not_started':
        this.released.inc();
        return;
      case 'finished':
        this.finished.inc();
        break;
      case 'failed':
        this.failed.inc();
        break;
      default:
        return;
    }
    this.attempts.observe(attempt);
  }
}
