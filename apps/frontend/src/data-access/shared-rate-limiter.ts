import { Redis } from 'ioredis';
import { RateLimiterPostgres, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '@pixelmill/kit';
import { openPostgres, type Pool } from '@pixelmill/kit/postgres';
import { InProcessRateLimiter, type RateDecision, type RateLimiter } from '../domain/rate-limiter';

/** Longest an upload waits for the shared store before the in-process limiter decides instead. */
export const STORE_TIMEOUT_MS = 1_000;
/** The table of the counts in PostgreSQL, in the schema of DATABASE_SCHEMA. */
export const RATE_LIMIT_TABLE = 'upload_rate_limits';

export interface UploadRate {
  /** Uploads a client may make per minute on average. */
  ratePerMinute: number;
  /** Uploads a client may make at once. */
  burst: number;
}

/**
 * The window the shared store counts in for a limit of `burst` at once and `ratePerMinute` on
 * average. rate-limiter-flexible counts in fixed windows that start at a client's first upload:
 * `points` uploads per `durationSeconds`. The window is the time the in-process token bucket takes
 * to fill from empty, rounded up to whole seconds (Redis keeps no less): so a client may make
 * `burst` uploads at once, and on average never more than the rate. A burst smaller than one
 * second of the rate becomes that second's uploads (rounded down).
 */
export function windowOf({ ratePerMinute, burst }: UploadRate): { points: number; durationSeconds: number } {
  if (!(ratePerMinute > 0)) throw new RangeError('ratePerMinute must be positive');
  if (!(burst >= 1)) throw new RangeError('burst must be at least 1');
  const durationSeconds = Math.max(1, Math.ceil((burst * 60) / ratePerMinute));
  return { points: Math.max(burst, Math.floor((ratePerMinute * durationSeconds) / 60)), durationSeconds };
}

/** Where the shared counts are kept. */
export interface RateLimitStore {
  /** For the logs: "Redis" or "PostgreSQL". */
  readonly name: string;
  /** The counting limiter on the store; the first call connects (or, after a connection that failed, tries again). */
  limiter(): Promise<RateLimiterAbstract>;
  close(): Promise<void>;
}

export interface StoreOptions extends UploadRate {
  url: string;
  /** Namespace of the keys (RATE_LIMIT_PREFIX), so several stacks or test runs can share one store. */
  prefix: string;
  /** Connecting gives up after this long; an upload meanwhile is decided in-process. */
  connectTimeoutMs?: number;
  /** A command or query gives up after this long; {@link STORE_TIMEOUT_MS} by default. */
  timeoutMs?: number;
}

const keyPrefixOf = (prefix: string): string => `${prefix}:upload-rate`;

/** The counts in Redis (ioredis), one key per client that expires with its window. */
export function redisRateLimitStore({
  url,
  prefix,
  connectTimeoutMs = 2_000,
  timeoutMs = STORE_TIMEOUT_MS,
  ...rate
}: StoreOptions): RateLimitStore {
  const { points, durationSeconds } = windowOf(rate);
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // Commands fail at once while Redis is away, instead of queueing behind the reconnection.
    enableOfflineQueue: false,
    commandTimeout: timeoutMs,
  });
  // ioredis reconnects by itself and reports each failed attempt here; the limiter logs an outage once.
  client.on('error', () => undefined);
  const limiter = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: keyPrefixOf(prefix),
    points,
    duration: durationSeconds,
    rejectIfRedisNotReady: true,
  });
  let connected: Promise<RateLimiterAbstract> | undefined;
  return {
    name: 'Redis',
    // A first connection that fails leaves ioredis reconnecting on its own; until then every count fails fast.
    limiter: () =>
      (connected ??= client.connect().then(
        () => limiter,
        () => limiter,
      )),
    close: async () => client.disconnect(),
  };
}

export interface PostgresStoreOptions extends StoreOptions {
  /** The schema of the table (DATABASE_SCHEMA). */
  schema: string;
  poolSize?: number;
}

/** The counts in PostgreSQL, a row per client in {@link RATE_LIMIT_TABLE}; expired rows are swept every 5 minutes. */
export function postgresRateLimitStore({
  url,
  schema,
  poolSize = 10,
  prefix,
  connectTimeoutMs = 2_000,
  timeoutMs = STORE_TIMEOUT_MS,
  ...rate
}: PostgresStoreOptions): RateLimitStore {
  const { points, durationSeconds } = windowOf(rate);
  let opened: Promise<{ pool: Pool; limiter: RateLimiterAbstract }> | undefined;
  const open = async (): Promise<{ pool: Pool; limiter: RateLimiterAbstract }> => {
    const pool = await openPostgres({ url, schema, poolSize, connectTimeoutMs, statementTimeoutMs: timeoutMs });
    try {
      const limiter = await new Promise<RateLimiterAbstract>((resolve, reject) => {
        // The callback reports the table created (two frontends creating it at once is fine).
        const created: RateLimiterPostgres = new RateLimiterPostgres(
          {
            storeClient: pool,
            schemaName: schema,
            tableName: RATE_LIMIT_TABLE,
            keyPrefix: keyPrefixOf(prefix),
            points,
            duration: durationSeconds,
          },
          (err?: Error) => (err ? reject(err) : resolve(created)),
        );
      });
      return { pool, limiter };
    } catch (err) {
      await pool.end();
      throw err;
    }
  };
  return {
    name: 'PostgreSQL',
    limiter: async () => {
      // Opened once; an open that failed is tried again by the next upload.
      opened ??= open().catch((err: unknown) => {
        opened = undefined;
        throw err;
      });
      return (await opened).limiter;
    },
    close: async () => {
      const current = opened;
      opened = undefined;
      await current?.then(({ pool }) => pool.end()).catch(() => undefined);
    },
  };
}

export interface SharedRateLimiterOptions {
  store: RateLimitStore;
  /** Decides while the store is out of reach; usually an {@link InProcessRateLimiter} of the same numbers. */
  fallback: RateLimiter;
  logger: Logger;
  /** Longest an upload waits for the store; {@link STORE_TIMEOUT_MS} by default. */
  timeoutMs?: number;
}

/** Rejects with a plain Error when `promise` takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The upload rate limit counted in a store every frontend shares, so the limit holds for a client
 * whichever frontend it reaches. When the store is out of reach, it fails open onto the fallback:
 * each frontend then limits on its own (N frontends allow N times the limit) rather than refusing
 * every upload or limiting none; the outage is logged once, and its end once.
 */
export class SharedRateLimiter implements RateLimiter {
  private readonly store: RateLimitStore;
  private readonly fallback: RateLimiter;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private reachable = true;

  constructor({ store, fallback, logger, timeoutMs = STORE_TIMEOUT_MS }: SharedRateLimiterOptions) {
    this.store = store;
    this.fallback = fallback;
    this.logger = logger;
    this.timeoutMs = timeoutMs;
  }

  async take(client: string): Promise<RateDecision> {
    let counted: RateLimiterRes;
    try {
      counted = await within(
        this.store.limiter().then((limiter) => limiter.consume(client)),
        this.timeoutMs,
        this.store.name,
      );
    } catch (err) {
      // rate-limiter-flexible refuses with a RateLimiterRes, and fails with an Error.
      if (!(err instanceof RateLimiterRes)) return this.fallBack(client, err);
      this.backInReach();
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)) };
    }
    this.backInReach();
    return { allowed: true, remaining: counted.remainingPoints };
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private fallBack(client: string, err: unknown): RateDecision | Promise<RateDecision> {
    if (this.reachable) {
      this.reachable = false;
      this.logger.warn(
        `the shared upload rate limit in ${this.store.name} is out of reach; each frontend limits uploads on its own until it is back: ${
          (err as Error).message
        }`,
      );
    }
    return this.fallback.take(client);
  }

  private backInReach(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.logger.info(`the shared upload rate limit in ${this.store.name} is back in reach`);
  }
}

export interface UploadRateLimitSettings extends UploadRate {
  /** Redis to count in; wins over `databaseUrl`. */
  redisUrl?: string;
  /** PostgreSQL to count in, when there is no Redis. */
  databaseUrl?: string;
  databaseSchema: string;
  databasePoolSize?: number;
  prefix: string;
  logger: Logger;
}

/**
 * The upload rate limiter the settings ask for: shared through Redis when `redisUrl` is set, else
 * through PostgreSQL when `databaseUrl` is, else in this process. None when the rate is 0 (no limit).
 * The caller closes a shared one on shutdown.
 */
export function createUploadRateLimiter(settings: UploadRateLimitSettings): RateLimiter | undefined {
  const { ratePerMinute, burst, prefix, logger } = settings;
  if (ratePerMinute === 0) return undefined;
  const inProcess = new InProcessRateLimiter({ ratePerMinute, burst });
  const store =
    settings.redisUrl !== undefined
      ? redisRateLimitStore({ url: settings.redisUrl, prefix, ratePerMinute, burst })
      : settings.databaseUrl !== undefined
        ? postgresRateLimitStore({
            url: settings.databaseUrl,
            schema: settings.databaseSchema,
            poolSize: settings.databasePoolSize,
            prefix,
            ratePerMinute,
            burst,
          })
        : undefined;
  if (store === undefined) return inProcess;
  logger.info(`the upload rate limit is shared by the frontends through ${store.name}`);
  return new SharedRateLimiter({ store, fallback: inProcess, logger });
}
