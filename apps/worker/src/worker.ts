import { Discovery, type Listening, type Logger, type ReadinessCheck } from '@pixelmill/kit';
import { pollTimeoutMs, type WorkerConfig } from './config';
import { createMasterApi, type MasterApi } from './data-access/master-api';
import { createStorageApi, type StorageApi } from './data-access/storage-api';
import type { DecodeLimits } from './domain/decode-plan';
import { FreeSlots } from './loop/free-slots';
import { MemoryBudget } from './loop/memory-budget';
import { WorkLoop, type LoopState, type WorkLoopOptions } from './loop/work-loop';
import { MasterContact, watchedMasterApi } from './status/master-contact';
import { serveStatus } from './status/status-server';
import { WorkerMetrics } from './status/worker-metrics';
import { TransformPool } from './threads/transform-pool';

/** Timings with a sensible value for every deployment, not worth an environment variable. */
export interface WorkerTuning {
  minPollIntervalMs: number;
  minHeartbeatMs: number;
  /**
   * Claim the next task while the thread encodes the last one (see WorkLoopOptions.prefetch).
   * Off: on 2 cores it gained nothing measurable (the cores are busy with the threads and the
   * HTTP work either way) and held one more image per thread (some 30 MB at 1920×1080).
   */
  prefetch: boolean;
}

const DEFAULT_TUNING: WorkerTuning = { minPollIntervalMs: 250, minHeartbeatMs: 1_000, prefetch: false };

/**
 * Loops per thread: when a thread is done with a task, its loop uploads and reports the result
 * while another loop claims and downloads the next task for the thread. The slots, not the
 * loops, bound what is claimed.
 */
const LOOPS_PER_THREAD = 2;

/**
 * Heap of a transform thread, per pixel of MAX_IMAGE_PIXELS: pixels live outside the heap, but
 * jpeg-js keeps an object per 8×8 block on it (150–200 bytes for 64 samples of a component).
 * A thread past its limit dies alone and its task fails, instead of growing until the process
 * is killed; no thread's heap may outgrow the worker's whole budget.
 */
const THREAD_HEAP_BYTES_PER_PIXEL = 32;
const MIN_THREAD_HEAP_MB = 64;

/** The old-generation heap limit of each transform thread, in MB. */
export function threadHeapLimitMb(config: Pick<WorkerConfig, 'MAX_IMAGE_PIXELS' | 'WORKER_MEMORY_MB'>): number {
  const forLargestImage = Math.ceil((config.MAX_IMAGE_PIXELS * THREAD_HEAP_BYTES_PER_PIXEL) / 2 ** 20);
  return Math.max(MIN_THREAD_HEAP_MB, Math.min(config.WORKER_MEMORY_MB, forLargestImage));
}

const MB = 2 ** 20;

/** What each image is checked against before it is decoded, on the main thread and in its thread. */
export function decodeLimits(config: Pick<WorkerConfig, 'MAX_IMAGE_PIXELS' | 'WORKER_MEMORY_MB'>): DecodeLimits {
  return { maxPixels: config.MAX_IMAGE_PIXELS, maxMemoryBytes: config.WORKER_MEMORY_MB * MB };
}

export interface WorkerDeps {
  master: MasterApi;
  storage: StorageApi;
  /** The transform threads, one per slot; closed by stop(). */
  pool: TransformPool;
  limits: DecodeLimits;
  logger: Logger;
}

/** Where the worker serves its metrics and health (see WorkerConfig's METRICS_PORT). */
export interface StatusPortOptions {
  port: number;
  host: string;
  /** METRICS_TOKEN */
  token?: string;
}

/** The loops of one worker process, sharing the clients, the thread pool and its slots. */
export class Worker {
  readonly pool: TransformPool;
  readonly metrics: WorkerMetrics;
  private readonly loops: WorkLoop[];
  private readonly contact = new MasterContact();
  private readonly master: MasterApi;
  private readonly logger: Logger;
  private stopping = false;
  private status: Listening | undefined;

  constructor(deps: WorkerDeps, options: WorkLoopOptions) {
    this.pool = deps.pool;
    this.metrics = new WorkerMetrics(deps.pool);
    this.master = watchedMasterApi(deps.master, this.contact);
    this.logger = deps.logger;
    const slots = new FreeSlots(deps.pool.size);
    const { storage, pool, limits, logger } = deps;
    const { master, metrics } = this;
    const memory = new MemoryBudget(limits.maxMemoryBytes);
    this.loops = Array.from(
      { length: pool.size * LOOPS_PER_THREAD },
      (_, index) =>
        new WorkLoop(
          { master, storage, transformer: pool, slots, memory, limits, metrics, logger: logger.child({ loop: index }) },
          options,
        ),
    );
  }

  get states(): LoopState[] {
    return this.loops.map((loop) => loop.state);
  }

  /** The address of the metrics and health port, once serveStatus() has opened it. */
  get statusUrl(): string | undefined {
    return this.status?.url;
  }

  /**
   * What `/readyz` checks. `master`: master answered the last call that ended (a claim, a heartbeat,
   * a report), and answers `/healthz` now (before the first call ends, a long poll for instance,
   * that is all there is to know). `claiming`: the worker is not shutting down.
   */
  get readiness(): Record<string, ReadinessCheck> {
    return {
      master: async () => {
        if (this.contact.failing) return 'failing';
        await this.master.ping();
      },
      claiming: async () => (this.stopping ? 'failing' : 'ok'),
    };
  }

  /** Opens the metrics and health port; closed by stop(), last. */
  async serveStatus(options: StatusPortOptions): Promise<Listening> {
    this.status = await serveStatus({ metrics: this.metrics.registry, readiness: this.readiness }, options.port, {
      host: options.host,
      token: options.token,
      logger: this.logger,
    });
    return this.status;
  }

  start(): void {
    for (const loop of this.loops) loop.start();
  }

  /**
   * Stops every loop: no more claims; true when all ended, with their tasks in hand done, within
   * `timeoutMs`; false when tasks were given back (released) instead. Then stops the threads, and
   * closes the status port (open until then, so that the drain can be watched).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    const ended = await Promise.all(this.loops.map((loop) => loop.stop(timeoutMs)));
    await this.pool.close();
    const status = this.status;
    this.status = undefined;
    await status?.close();
    return ended.every(Boolean);
  }
}

export interface PoolDeps {
  logger?: Logger;
  /** The thread entry point; tests give one that misbehaves. */
  threadScript?: string;
  /** Overrides the heap limit of each thread (threadHeapLimitMb), for tests. */
  threadHeapMb?: number;
}

/** The transform threads as configured. */
export function createTransformPool(config: WorkerConfig, deps: PoolDeps = {}): TransformPool {
  const limits = decodeLimits(config);
  return new TransformPool({
    size: config.WORKER_CONCURRENCY,
    codec: {
      pngDeflateLevel: config.PNG_DEFLATE_LEVEL,
      jpegQuality: config.JPEG_QUALITY,
      ...limits,
    },
    script: deps.threadScript,
    resourceLimits: { maxOldGenerationSizeMb: deps.threadHeapMb ?? threadHeapLimitMb(config) },
    timeoutMs: config.TRANSFORM_TIMEOUT_MS,
    logger: deps.logger,
  });
}

export type WorkerProcessDeps = PoolDeps & { logger: Logger; tuning?: Partial<WorkerTuning> };

/**
 * The worker as configured: WORKER_CONCURRENCY transform threads; master found through kv
 * unless MASTER_URL says otherwise, both reached with WORKER_TOKEN; storage only through the
 * signed URLs that come with each task.
 */
export function createWorker(config: WorkerConfig, deps: WorkerProcessDeps): Worker {
  const tuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const discovery = new Discovery({
    kvUrl: config.KV_URL,
    overrides: { master: config.MASTER_URL },
    token: config.WORKER_TOKEN,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const master = createMasterApi(discovery.client('master'), {
    pollTimeoutMs: (waitMs) => pollTimeoutMs(config, waitMs),
  });
  const storage = createStorageApi({ timeoutMs: config.REQUEST_TIMEOUT_MS });
  const pool = createTransformPool(config, deps);
  return new Worker(
    { master, storage, pool, limits: decodeLimits(config), logger: deps.logger },
    {
      pollWaitMs: config.POLL_WAIT_MS,
      backoff: { initialMs: config.ERROR_BACKOFF_MS, maxMs: config.ERROR_BACKOFF_MAX_MS },
      minPollIntervalMs: tuning.minPollIntervalMs,
      minHeartbeatMs: tuning.minHeartbeatMs,
      attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
      prefetch: tuning.prefetch,
    },
  );
}

/**
 * Creates the worker, opens its metrics and health port when METRICS_PORT is set (before the first
 * claim: a port in use stops the start, as it does a server's), and starts its loops.
 */
export async function startWorker(config: WorkerConfig, deps: WorkerProcessDeps): Promise<Worker> {
  const worker = createWorker(config, deps);
  if (config.METRICS_PORT !== undefined) {
    try {
      await worker.serveStatus({ port: config.METRICS_PORT, host: config.HOST, token: config.METRICS_TOKEN });
    } catch (err) {
      await worker.stop(0);
      throw err;
    }
  }
  worker.start();
  return worker;
}
