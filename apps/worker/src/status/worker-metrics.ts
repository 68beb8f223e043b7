import type { ImageType, Operation } from '@pixelmill/contracts';
import { Counter, Gauge, Histogram, Registry } from '@pixelmill/kit';
import { ImageDecodeError } from '../domain/work-errors';
import { ThreadOutOfMemoryError, TransformTimeoutError } from '../threads/transform-pool';
import type { TransformTimings } from '../threads/transform-protocol';

/**
 * Why a task failed, in a few classes: `image` (it does not decode, or breaks a limit), `timeout`
 * (TRANSFORM_TIMEOUT_MS), `memory` (its thread's heap limit), `other` (a missing source, a result
 * storage refused, an output that does not encode). The reason itself goes to master and the log.
 */
export const FAILURE_CLASSES = ['image', 'timeout', 'memory', 'other'] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export function failureClass(err: unknown): FailureClass {
  if (err instanceof ImageDecodeError) return 'image';
  if (err instanceof TransformTimeoutError) return 'timeout';
  if (err instanceof ThreadOutOfMemoryError) return 'memory';
  return 'other';
}

/** Seconds of one transform: a few ms for a small PNG, up to TRANSFORM_TIMEOUT_MS (60 s) for the largest images. */
const TRANSFORM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The format label of a content type: `image/png` → `png`. */
const formatOf = (contentType: ImageType): string => contentType.slice(contentType.indexOf('/') + 1);

/** What the metrics read of the thread pool at each scrape. */
export interface ThreadCounts {
  /** Threads of the pool. */
  readonly size: number;
  /** Threads holding a job at this moment. */
  readonly running: number;
}

/**
 * What this worker process did with the tasks it claimed, counted where the loop decides it. Each
 * claimed task ends in exactly one of finished, failed, released or abandoned; master's counters
 * are the stack's view of the same, these one worker's.
 */
export class WorkerMetrics {
  /** Served at the worker's `/metrics` (METRICS_PORT). */
  readonly registry = new Registry();
  private readonly finished = new Counter({
    name: 'pixelmill_worker_tasks_finished_total',
    help: 'Tasks this worker finished: result uploaded and accepted by master',
    registers: [this.registry],
  });
  private readonly failed = new Counter<'reason'>({
    name: 'pixelmill_worker_tasks_failed_total',
    help:
      'Tasks this worker reported failed (they can never succeed), by reason class: image (does not decode, or breaks a ' +
      'limit), timeout (TRANSFORM_TIMEOUT_MS), memory (the thread heap limit), other',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly released = new Counter({
    name: 'pixelmill_worker_tasks_released_total',
    help: 'Tasks this worker gave back to master to be retried (a passing error, ATTEMPT_TIMEOUT_MS, shutdown)',
    registers: [this.registry],
  });
  private readonly abandoned = new Counter({
    name: 'pixelmill_worker_tasks_abandoned_total',
    help: 'Tasks this worker dropped without a word from master: their lease was lost, or master could not be told of a release',
    registers: [this.registry],
  });
  private readonly transformSeconds = new Histogram<'op' | 'format'>({
    name: 'pixelmill_worker_transform_seconds',
    help: 'Time of a transform in its thread (decode, operation, encode), by operation and image format, for transforms that succeeded',
    labelNames: ['op', 'format'],
    buckets: TRANSFORM_BUCKETS,
    registers: [this.registry],
  });

  constructor(threads: ThreadCounts) {
    // Every class from the start, so that a rate over them is 0, not missing, until the first failure.
    for (const reason of FAILURE_CLASSES) this.failed.inc({ reason }, 0);
    new Gauge({
      name: 'pixelmill_worker_threads',
      help: 'Transform threads of this worker (WORKER_CONCURRENCY): images it transforms at once',
      registers: [this.registry],
      collect() {
        this.set(threads.size);
      },
    });
    new Gauge({
      name: 'pixelmill_worker_threads_busy',
      help: 'Transform threads holding an image (decoding, transforming or encoding) at the scrape',
      registers: [this.registry],
      collect() {
        this.set(threads.running);
      },
    });
  }

  transformed(op: Operation, contentType: ImageType, timings: TransformTimings): void {
    const ms = timings.decodeMs + timings.operationMs + timings.encodeMs;
    this.transformSeconds.observe({ op, format: formatOf(contentType) }, ms / 1000);
  }

  taskFinished(): void {
    this.finished.inc();
  }

  /** `err`: the PermanentWorkError the task failed of. */
  taskFailed(err: unknown): void {
    this.failed.inc({ reason: failureClass(err) });
  }

  taskReleased(): void {
    this.released.inc();
  }

  taskAbandoned(): void {
    this.abandoned.inc();
  }
}
