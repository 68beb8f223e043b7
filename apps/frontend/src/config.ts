import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema, UrlSchema } from '@pixelmill/kit';
import { DatabaseEnvSchema } from '@pixelmill/kit/postgres';
import { DEFAULT_IMAGE_LIMITS } from './domain/image-upload';

/** A key fits in a header and in a comma-separated list; long enough not to be guessed. */
const ApiKeySchema = z
  .string()
  .min(16, 'each key must be at least 16 characters')
  .max(200, 'each key must be at most 200 characters')
  .regex(/^[\x21-\x2b\x2d-\x7e]+$/, 'each key must be printable ASCII without spaces or commas');

/** `API_KEYS=key1,key2`: spaces around the commas are ignored. */
const ApiKeyListSchema = z
  .string()
  .transform((list) =>
    list
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== ''),
  )
  .pipe(z.array(ApiKeySchema).min(1, 'list at least one key, or leave API_KEYS unset for an open API'));

// DATABASE_URL, DATABASE_SCHEMA and DATABASE_POOL_SIZE (taskdb's and kv's names): for the frontend,
// where the upload rate limit is shared when there is no REDIS_URL; unset, it is counted in-process.
export const FrontendConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape)
  .extend(DatabaseEnvSchema.shape)
  .extend({
    PORT: PortSchema.default(8080),
    /** Largest image accepted; a larger upload is refused with 413 while it streams in. */
    MAX_UPLOAD_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(25 * 1024 * 1024),
    /**
     * Raw uploads that declare a length above this stream on to master as they arrive (checked by
     * their first bytes) instead of being read into memory first; smaller ones are read whole, so a
     * lost answer from master can be asked for again. 0 (the default): every upload streams.
     */
    STREAM_UPLOADS_FROM_BYTES: z.coerce.number().int().min(0).default(0),
    /**
     * Most pixels (width × height) an image may declare in its header, any of its frames may have,
     * and all its frames together; more is refused with 413.
     */
    MAX_IMAGE_PIXELS: z.coerce.number().int().positive().default(DEFAULT_IMAGE_LIMITS.maxPixels),
    /** Widest and tallest an image may declare in its header, or any of its frames be; more is refused with 413. */
    MAX_IMAGE_SIDE: z.coerce.number().int().positive().default(DEFAULT_IMAGE_LIMITS.maxSide),
    /** Keys that may use the API; each sees only its own images. Unset: the API is open to all. */
    API_KEYS: ApiKeyListSchema.optional(),
    /**
     * Uploads a client (an API key, or an address without keys) may make per minute on average; 0
     * turns the limit off. Unset: see `uploadRatePerMinute`.
     */
    UPLOAD_RATE_PER_MINUTE: z.coerce.number().int().min(0).optional(),
    /** Uploads a client may make at once, above the rate, after a quiet spell. */
    UPLOAD_BURST: z.coerce.number().int().min(1).default(30),
    /**
     * redis:// (or rediss://) URL of a Redis that keeps the upload rate limit, shared by every frontend
     * using it; wins over DATABASE_URL. Unset, and DATABASE_URL unset too: each frontend counts on its own.
     */
    REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
    /** Namespace of the shared rate limit's keys, so several stacks or test runs can share one Redis or database. */
    RATE_LIMIT_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9][\w.-]{0,63}$/, 'must be 1 to 64 letters, digits, "_", "." or "-"')
      .default('pixelmill'),
    /**
     * Proxies in front of the frontend whose X-Forwarded-For is believed, counted from ours: the
     * client address (for the rate limit without keys) is that many hops back. 0: the socket's peer.
     */
    TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
    /**
     * Connections one client address may hold open at once; one more is refused with 429 as it
     * connects. 0 turns the cap off. Counted by the socket's peer: behind a proxy every client
     * shares the proxy's address, so there turn it off (or set it above what the proxy opens).
     */
    MAX_CONNECTIONS_PER_CLIENT: z.coerce.number().int().min(0).default(64),
    /** Fixed address of master (a load balancer, a service DNS name); wins over discovery through kv. */
    MASTER_URL: UrlSchema.optional(),
    /** How often the status page reloads itself (without JavaScript) until the image is done. */
    PAGE_REFRESH_SECONDS: z.coerce.number().int().min(1).max(60).default(1),
  });
export type FrontendConfig = z.output<typeof FrontendConfigSchema>;

/** The upload rate limit of a frontend others can reach, when UPLOAD_RATE_PER_MINUTE is unset. */
export const DEFAULT_UPLOAD_RATE_PER_MINUTE = 120;

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]']);
const isLoopback = (host: string): boolean => LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * The upload rate limit in force. Unset, it is off for a frontend only this machine can reach (it
 * listens on loopback, believes no proxy and has no API keys: the default `npm start` stack, whose
 * one local client should get the pipeline's whole speed), and DEFAULT_UPLOAD_RATE_PER_MINUTE
 * for one that others can reach (another HOST, behind a proxy, or with keys).
 */
export function uploadRatePerMinute(
  config: Pick<FrontendConfig, 'UPLOAD_RATE_PER_MINUTE' | 'HOST' | 'TRUST_PROXY_HOPS' | 'API_KEYS'>,
): number {
  if (config.UPLOAD_RATE_PER_MINUTE !== undefined) return config.UPLOAD_RATE_PER_MINUTE;
  const onlyThisMachine = isLoopback(config.HOST) && config.TRUST_PROXY_HOPS === 0 && config.API_KEYS === undefined;
  return onlyThisMachine ? 0 : DEFAULT_UPLOAD_RATE_PER_MINUTE;
}
