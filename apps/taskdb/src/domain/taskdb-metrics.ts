import { Counter, Gauge, Registry } from '@pixelmill/kit';
import { OPEN_STATES, type TaskCounts } from '../data-access/task-repository';

/** How an attempt whose lease ran out ended: its task back in the queue, or failed on its last attempt. */
export type LeaseExpiryOutcome = 'retried' | 'failed';

export interface TaskdbMetricsSource {
  /** The tasks by state and the oldest waiting one's time, read once per scrape. */
  counts(): Promise<TaskCounts>;
  now(): number;
}

/**
 * taskdb's figures: the tasks waiting and running and how long the oldest claimable one has
 * waited, read from the database at each scrape (shared by every instance on it), and the leases
 * this instance found run out. Ended tasks are not counted here: they are kept for good (expired
 * ones too), and counting them at each scrape would walk them all (about 0.1 s per million on
 * SQLite, on taskdb's event loop); master counts them as they end.
 */
export class TaskdbMetrics {
  /** Served at taskdb's `/metrics`. */
  readonly registry = new Registry();
  private readonly leaseExpiries = new Counter<'outcome'>({
    name: 'pixelmill_lease_expiries_total',
    help:
      'Attempts whose lease ran out (worker gone or too slow), reaped by this taskdb: the task retried after a backoff, ' +
      'or failed on its last attempt',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  constructor(source: TaskdbMetricsSource) {
    for (const outcome of ['retried', 'failed'] as const) this.leaseExpiries.inc({ outcome }, 0);
    // Both gauges are collected at once by a scrape: they share one query.
    let reading: Promise<TaskCounts> | undefined;
    const read = (): Promise<TaskCounts> =>
      (reading ??= source.counts().finally(() => {
        reading = undefined;
      }));
    new Gauge<'state'>({
      name: 'pixelmill_tasks',
      help:
        'Tasks not ended, by state (not_started: waiting, or in a retry backoff; in_progress: held by a worker), read from the ' +
        'database at the scrape (every taskdb on it shows the same); ended tasks are counted by master as they end',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        // A database out of reach leaves the series out rather than failing the whole scrape; /readyz tells why.
        const counts = await read().catch(() => undefined);
        this.reset();
        if (counts) for (const state of OPEN_STATES) this.set({ state }, counts.byState[state]);
      },
    });
    new Gauge({
      name: 'pixelmill_oldest_waiting_task_age_seconds',
      help: 'How long the task that has waited longest for a worker has been claimable (since it was created, or its retry backoff ended); 0 when none waits',
      registers: [this.registry],
      async collect() {
        const counts = await read().catch(() => undefined);
        const since = counts?.oldestWaitingSince;
        // NaN: not known (the database is out of reach), which 0 would hide.
        this.set(counts === undefined ? Number.NaN : since === null || since === undefined ? 0 : Math.max(0, source.now() - since) / 1000);
      },
    });
  }

  leaseExpired(outcome: LeaseExpiryOutcome): void {
    this.leaseExpiries.inc({ outcome });
  }
}
