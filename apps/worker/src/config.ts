import { availableParallelism, totalmem } from 'node:os';
import { z } from 'zod';
import { GetWorkQuerySchema } from '@pixelmill/contracts';
import { AuthEnvSchema, DiscoveryEnvSchema, LogLevelSchema, PortSchema, ServerEnvSchema, UrlSchema } from '@pixelmill/kit';

const MAX_CONCURRENCY = 64;

const positiveMs = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** Below this, the threads cannot even load their codecs. */
export const MIN_WORKER_MEMORY_MB = 64;
/** The share of the machine (or of the container's limit) the worker's images may take by default. */
const DEFAULT_MEMORY_SHARE = 0.5;

/** Half of the memory the process may use: the machine's, or its cgroup's limit when lower. */
export function defaultWorkerMemoryMb(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  const usable = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return Math.max(MIN_WORKER_MEMORY_MB, Math.floor((usable * DEFAULT_MEMORY_SHARE) / 2 ** 20));
}

export const WorkerConfigSchema = DiscoveryEnvSchema.extend({
  LOG_LEVEL: LogLevelSchema.default('info'),
  /** A fixed address of master that wins over discovery through kv (a load balancer, a service DNS name). */
  MASTER_URL: UrlSchema.optional(),
  /**
   * Sent to master (its worker side) and to kv (which lets it read `services/` keys only). The
   * worker needs no storage address nor credential: each task comes with signed URLs.
   */
  WORKER_TOKEN: AuthEnvSchema.shape.WORKER_TOKEN,
  /**
   * Transform threads of this process: images decoded, transformed and encoded at once, and
   * tasks claimed at once (a task is claimed only when a thread is free for it).
   */
  WORKER_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_CONCURRENCY)
    .default(() => Math.min(MAX_CONCURRENCY, availableParallelism())),
  /** Long poll: how long master may hold a getWork request open; bounded like the contract's waitMs. */
  POLL_WAIT_MS: GetWorkQuerySchema.shape.waitMs.unwrap().default(20_000),
  /** First pause after a failed turn (service unreachable, 5xx); doubles per failure up to the max. */
  ERROR_BACKOFF_MS: positiveMs(1_000),
  ERROR_BACKOFF_MAX_MS: positiveMs(30_000),
  /**
   * The longest one attempt may take here before the worker gives the task back (taskdb enforces
   * its own hard limit, 120 s by default). A transform still running then is stopped with its
   * thread, which is replaced.
   */
  ATTEMPT_TIMEOUT_MS: positiveMs(120_000),
  /** zlib level of PNG output: 4 is about as fast as 1 and within a few % of 9 in size. */
  PNG_DEFLATE_LEVEL: z.coerce.number().int().min(0).max(9).default(4),
  JPEG_QUALITY: z.coerce.number().int().min(1).max(100).default(90),
  /**
   * Largest width × height decoded, of the image, of any one frame and of all frames together;
   * a larger image fails its task (decompression bombs).
   */
  MAX_IMAGE_PIXELS: z.coerce.number().int().min(1).default(50_000_000),
  /**
   * Memory for the images in hand, in MB: the decoded pixels and the working memory of the decoders
   * and of the operation (a second bitmap, blur's arrays, a resize's result), estimated from each image's structure and
   * its operation before it is decoded. A task waits until its estimate
   * fits in what is left; an image that needs more than all of it fails. Also the heap limit of
   * each transform thread. Default: half of the machine's memory, or of the container's limit.
   */
  WORKER_MEMORY_MB: z.coerce.number().int().min(MIN_WORKER_MEMORY_MB).default(defaultWorkerMemoryMb),
  /**
   * The longest one transform (decode, operation, encode) may take in its thread. Past it the
   * thread is stopped and replaced, and the task fails: the same image would take as long again.
   * Of the largest images allowed (49 megapixels), a GIF was the slowest at 32 s (gifwrap's
   * encoder), JPEG and PNG took 3–9 s (scripts/measure-large-images.js): twice the slowest, for a
   * busy machine.
   */
  TRANSFORM_TIMEOUT_MS: positiveMs(60_000),
  /** On SIGTERM/SIGINT: how long the tasks in hand may take to finish before they are released. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(20_000),
  /**
   * Port of the worker's metrics and health server (`/metrics`, `/healthz`, `/readyz`); 0 picks a
   * free one. Unset: no port is opened, the worker stays a pure client.
   */
  METRICS_PORT: PortSchema.optional(),
  /** Interface the metrics port binds to, as a server's HOST: loopback unless said otherwise. */
  HOST: ServerEnvSchema.shape.HOST,
  /**
   * When set, `/metrics` wants it as a bearer token. Not INTERNAL_TOKEN, which a worker never holds
   * (and which a scraper must not send to a worker's host), nor WORKER_TOKEN, which claims tasks.
   */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
}).refine((config) => config.ERROR_BACKOFF_MAX_MS >= config.ERROR_BACKOFF_MS, {
  path: ['ERROR_BACKOFF_MAX_MS'],
  message: 'must not be less than ERROR_BACKOFF_MS',
});
export type WorkerConfig = z.output<typeof WorkerConfigSchema>;

/**
 * The HTTP timeout of a getWork call: longer than the long poll itself, or every empty poll
 * would end as a timeout instead of a 204.
 */
export function pollTimeoutMs(config: Pick<WorkerConfig, 'REQUEST_TIMEOUT_MS'>, waitMs: number): number {
  return waitMs + config.REQUEST_TIMEOUT_MS;
}
