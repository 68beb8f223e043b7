import type { Logger } from '@pixelmill/kit';
import { sourceObject, taskObjects, type ImageStoreGateway } from '../data-access/image-store-gateway';
import type { TaskGateway } from '../data-access/task-gateway';

export interface HousekeeperOptions {
  tasks: TaskGateway;
  store: ImageStoreGateway;
  logger: Logger;
  /** How long an ended task's result and record stay; older ones are deleted and answer 410. */
  retentionMs: number;
  /** Tasks handled per batch (one taskdb read, one storage deletion of their objects, one taskdb write). */
  batchSize?: number;
  /** Batches per run at most, so one run never takes long; the next run goes on. */
  maxBatches?: number;
  now?: () => number;
}

export interface SweepResult {
  sourcesDeleted: number;
  expired: number;
}

/**
 * Deletes what no one needs any more, in bounded batches: the source of every task that finished
 * (its result is what is left to show; a failed task keeps its source until it expires, for an
 * operator's retry: taskdb decides what is due), and every file of a task that ended more than
 * the retention time ago (taskdb then answers 410 for it). Files go first, the record of their
 * deletion after, so a run cut short is simply done again: deleting twice is harmless. Several
 * masters may sweep at once for the same reason.
 */
export class Housekeeper {
  private readonly batchSize: number;
  private readonly maxBatches: number;
  private readonly now: () => number;

  constructor(private readonly options: HousekeeperOptions) {
    this.batchSize = options.batchSize ?? 100;
    this.maxBatches = options.maxBatches ?? 10;
    this.now = options.now ?? Date.now;
  }

  async sweep(): Promise<SweepResult> {
    const total: SweepResult = { sourcesDeleted: 0, expired: 0 };
    for (let batch = 0; batch < this.maxBatches; batch += 1) {
      const { tasks, store } = this.options;
      const due = await tasks.housekeeping(this.now() - this.options.retentionMs, this.batchSize);
      if (due.sources.length === 0 && due.expired.length === 0) break;
      // Every attempt of an expired task may have left a result.
      await store.deleteObjects([...due.sources.map(sourceObject), ...due.expired.flatMap(({ id, attempt }) => taskObjects(id, attempt))]);
      const done = await tasks.housekeepingDone({ sourcesDeleted: due.sources, expired: due.expired.map(({ id }) => id) });
      total.sourcesDeleted += done.sourcesDeleted;
      total.expired += done.expired;
      if (due.sources.length < this.batchSize && due.expired.length < this.batchSize) break;
    }
    return total;
  }
}

/**
 * Runs a sweep every `intervalMs` (the next one starts only after the last ended); stop() waits
 * for a sweep in progress.
 */
export function startHousekeeping(housekeeper: Housekeeper, intervalMs: number, logger: Logger): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = (): void => {
    running = housekeeper
      .sweep()
      .then(
        ({ sourcesDeleted, expired }) => {
          if (sourcesDeleted + expired > 0) {
            logger.info(`housekeeping: deleted ${sourcesDeleted} source(s) of ended tasks, expired ${expired} task(s)`, {
              sourcesDeleted,
              expired,
            });
          }
        },
        (err: unknown) => {
          logger.warn(`housekeeping failed, trying again in ${intervalMs} ms: ${(err as Error).message}`);
        },
      )
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(run, intervalMs);
      });
  };
  timer = setTimeout(run, intervalMs);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
