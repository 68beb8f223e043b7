import { Discovery, type Logger } from '@pixelmill/kit';
import { pollTimeoutMs, type WorkerConfig } from './config';
import { createMasterApi } from './data-access/master-api';
import { createStorageApi } from './data-access/storage-api';
import { ImageCodec } from './domain/image-codec';
import { WorkLoop, type LoopState, type WorkLoopDeps, type WorkLoopOptions } from './loop/work-loop';

/** Timings with a sensible value for every deployment, not worth an environment variable. */
export interface WorkerTuning {
  minPollIntervalMs: number;
  minHeartbeatMs: number;
}

const DEFAULT_TUNING: WorkerTuning = { minPollIntervalMs: 250, minHeartbeatMs: 1_000 };

/** WORKER_CONCURRENCY loops sharing the clients and the codec. */
export class Worker {
  private readonly loops: WorkLoop[];

  constructor(deps: WorkLoopDeps, options: WorkLoopOptions & { concurrency: number }) {
    this.loops = Array.from({ length: options.concurrency }, (_, index) =>
      new WorkLoop({ ...deps, logger: deps.logger.child({ loop: index }) }, options),
    );
  }

  get states(): LoopState[] {
    return this.loops.map((loop) => loop.state);
  }

  start(): void {
    for (const loop of this.loops) loop.start();
  }

  /**
   * Stops every loop: no more claims; true when all ended, with their tasks in hand done, within
   * `timeoutMs`; false when tasks were given back (released) instead.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    const ended = await Promise.all(this.loops.map((loop) => loop.stop(timeoutMs)));
    return ended.every(Boolean);
  }
}

/**
 * The worker as configured: master found through kv unless MASTER_URL says otherwise, both
 * reached with WORKER_TOKEN; storage only through the signed URLs that come with each task.
 */
export function createWorker(
  config: WorkerConfig,
  deps: { logger: Logger; tuning?: Partial<WorkerTuning> },
): Worker {
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
  const codec = new ImageCodec({
    pngDeflateLevel: config.PNG_DEFLATE_LEVEL,
    jpegQuality: config.JPEG_QUALITY,
    maxPixels: config.MAX_IMAGE_PIXELS,
  });
  return new Worker(
    { master, storage, codec, logger: deps.logger },
    {
      concurrency: config.WORKER_CONCURRENCY,
      pollWaitMs: config.POLL_WAIT_MS,
      backoff: { initialMs: config.ERROR_BACKOFF_MS, maxMs: config.ERROR_BACKOFF_MAX_MS },
      minPollIntervalMs: tuning.minPollIntervalMs,
      minHeartbeatMs: tuning.minHeartbeatMs,
      attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
    },
  );
}
