import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import winston from 'winston';
import { ErrorBodySchema } from '@pixelmill/contracts';
import { Discovery, listen, type Listening, type Logger } from '@pixelmill/kit';
import { createTestSchema, freePort, startTcpProxy, type TestSchema } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import {
  createUploadRateLimiter,
  postgresRateLimitStore,
  redisRateLimitStore,
  SharedRateLimiter,
} from '../../src/data-access/shared-rate-limiter';
import { InProcessRateLimiter, type RateLimiter } from '../../src/domain/rate-limiter';
import { startFakeMaster, type FakeMaster } from './fake-master';

// The upload rate limit that every frontend shares through Redis or PostgreSQL (the real ones of
// this machine), and what the frontends do while that store is out of reach.

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_A = 'key-a-for-shared-limit-0123456789';
const KEY_B = 'key-b-for-shared-limit-0123456789';
/** A burst of 3 then one upload a minute: a test never sees a count come back. */
const RATE = { ratePerMinute: 1, burst: 3 };
/** Generous on a busy machine: a test must not fall back to the in-process limit by being slow. */
const TIMEOUT_MS = 10_000;
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(100)]);

/** The prefixes used in Redis, whose keys are deleted when the tests end. */
const redisKeyPrefixes: string[] = [];
/** The schema of this run in the machine's PostgreSQL. */
let database: TestSchema | undefined;

beforeAll(async () => {
  database = await createTestSchema('ratelimit');
});

afterAll(async () => {
  await database?.drop();
});

/** A key prefix of its own per run, so runs sharing the machine's Redis never count together. */
const runPrefix = (): string => `pixelmill-test-${randomBytes(6).toString('hex')}`;

/** A logger whose lines the test reads. */
function capturingLogger(): { logger: Logger; lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as { level: string; message: string });
      done();
    },
  });
  const logger = winston.createLogger({
    level: 'info',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  return { logger, lines };
}

describe('the upload rate limit', () => {
  let master: FakeMaster;
  const frontends: Listening[] = [];
  const limiters: RateLimiter[] = [];

  beforeAll(async () => {
    master = await startFakeMaster();
  });

  afterAll(async () => {
    await master.close();
  });

  afterEach(async () => {
    await Promise.all(frontends.splice(0).map((frontend) => frontend.close()));
    await Promise.all(limiters.splice(0).map(async (limiter) => limiter.close?.()));
  });

  /** A frontend app on a port of its own, as a second instance of the service would be. */
  const startFrontend = async (uploadLimiter: RateLimiter | undefined, { apiKeys }: { apiKeys?: string[] } = {}): Promise<string> => {
    if (uploadLimiter) limiters.push(uploadLimiter);
    const app = createApp({
      master: new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 5000 }).client('master'),
      logger: winston.createLogger({ silent: true }),
      maxUploadBytes: 4096,
      apiKeys,
      uploadLimiter,
    });
    const frontend = await listen(app, 0);
    frontends.push(frontend);
    return frontend.url;
  };

  const upload = (frontendUrl: string, headers: Record<string, string> = {}) =>
    fetch(`${frontendUrl}/newImage`, {
      method: 'POST',
      body: new Uint8Array(PNG),
      headers: { 'content-type': 'image/png', accept: 'application/json', ...headers },
    });

  /** The statuses of uploads made one after the other, each to the frontend named. */
  const statusesOf = async (frontendUrls: string[], headers: Record<string, string> = {}): Promise<number[]> => {
    const statuses: number[] = [];
    for (const url of frontendUrls) {
      const response = await upload(url, headers);
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    return statuses;
  };

  /** The refusal is the rate limit's: 429 too_many_requests, with a Retry-After within the window. */
  const expectRateLimited = async (response: Response, windowSeconds: number): Promise<void> => {
    expect(response.status).toBe(429);
    const retryAfter = Number(response.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('too_many_requests');
  };

  /** 3 uploads a client at once, then one a minute: a window of 180 s in the shared store. */
  const WINDOW_SECONDS = 180;

  describe.each([
    ['Redis', (prefix: string) => redisRateLimitStore({ url: REDIS_URL, prefix, ...RATE, timeoutMs: TIMEOUT_MS })],
    [
      'PostgreSQL',
      (prefix: string) => postgresRateLimitStore({ url: database!.url, schema: database!.schema, prefix, ...RATE, timeoutMs: TIMEOUT_MS }),
    ],
  ])('shared through %s', (_name, storeOf) => {
    /** One frontend's limiter in the namespace `prefix`: each has its own connection, as a process of its own would. */
    const shared = (prefix: string): SharedRateLimiter => {
      redisKeyPrefixes.push(prefix);
      return new SharedRateLimiter({
        store: storeOf(prefix),
        fallback: new InProcessRateLimiter(RATE),
        logger: winston.createLogger({ silent: true }),
        timeoutMs: TIMEOUT_MS,
      });
    };

    it('when two frontends share it, then the upload after the burst is refused with 429 and Retry-After, whichever frontend gets it', async () => {
      const prefix = runPrefix();
      const [a, b] = [await startFrontend(shared(prefix)), await startFrontend(shared(prefix))];

      expect(await statusesOf([a, b, a])).toEqual([202, 202, 202]);

      await expectRateLimited(await upload(b), WINDOW_SECONDS);
      await expectRateLimited(await upload(a), WINDOW_SECONDS);
    });

    it('when one client has used its burst, then another client (another key) still has its own', async () => {
      const prefix = runPrefix();
      const keys = { apiKeys: [KEY_A, KEY_B] };
      const [a, b] = [await startFrontend(shared(prefix), keys), await startFrontend(shared(prefix), keys)];
      const keyA = { authorization: `Bearer ${KEY_A}` };

      expect(await statusesOf([a, b, a, b], keyA)).toEqual([202, 202, 202, 429]);
      expect(await statusesOf([b], { authorization: `Bearer ${KEY_B}` })).toEqual([202]);
    });

    it('when two stacks share the store under different prefixes, then each counts on its own', async () => {
      const [a, b] = [await startFrontend(shared(runPrefix())), await startFrontend(shared(runPrefix()))];

      expect(await statusesOf([a, a, a, a])).toEqual([202, 202, 202, 429]);
      expect(await statusesOf([b, b, b])).toEqual([202, 202, 202]);
    });
  });

  describe('by default (neither REDIS_URL nor DATABASE_URL)', () => {
    it('when a client uploads to two frontends, then each counts on its own: the burst is per process', async () => {
      const settings = { ...RATE, databaseSchema: 'unused', prefix: runPrefix(), logger: winston.createLogger({ silent: true }) };
      const [first, second] = [createUploadRateLimiter(settings), createUploadRateLimiter(settings)];
      expect(first).toBeInstanceOf(InProcessRateLimiter);
      const [a, b] = [await startFrontend(first), await startFrontend(second)];

      expect(await statusesOf([a, b, a, b, a, b])).toEqual([202, 202, 202, 202, 202, 202]);
      await expectRateLimited(await upload(a), 60);
      await expectRateLimited(await upload(b), 60);
    });
  });

  describe('when the store is out of reach', () => {
    it.each([
      ['Redis', (port: number) => ({ redisUrl: `redis://127.0.0.1:${port}` })],
      ['PostgreSQL', (port: number) => ({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/test` })],
    ])(
      'when %s cannot be reached, then uploads are limited in-process (fail open), answered, and the outage logged once',
      async (name, unreachable) => {
        const { logger, lines } = capturingLogger();
        const limiter = createUploadRateLimiter({
          ...RATE,
          ...unreachable(await freePort()),
          databaseSchema: 'unused',
          prefix: runPrefix(),
          logger,
        });
        expect(limiter).toBeInstanceOf(SharedRateLimiter);
        const frontend = await startFrontend(limiter);

        expect(await statusesOf([frontend, frontend, frontend])).toEqual([202, 202, 202]);
        await expectRateLimited(await upload(frontend), 60);

        expect(lines.filter((line) => line.level === 'warn')).toEqual([
          expect.objectContaining({ message: expect.stringMatching(new RegExp(`upload rate limit in ${name} is out of reach`)) }),
        ]);
        expect((await fetch(`${frontend}/healthz`)).status).toBe(200);
      },
    );

    it('when PostgreSQL goes away and comes back, then the in-process limit stands in meanwhile, and each change is logged once', async () => {
      const url = new URL(database!.url);
      const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
      url.host = `127.0.0.1:${proxy.port}`;
      const { logger, lines } = capturingLogger();
      try {
        const store = postgresRateLimitStore({
          url: url.toString(),
          schema: database!.schema,
          prefix: runPrefix(),
          ...RATE,
          timeoutMs: TIMEOUT_MS,
        });
        const frontend = await startFrontend(
          new SharedRateLimiter({ store, fallback: new InProcessRateLimiter(RATE), logger, timeoutMs: TIMEOUT_MS }),
        );
        expect(await statusesOf([frontend])).toEqual([202]); // counted in PostgreSQL: 1 of 3

        await proxy.cut();
        // The in-process bucket knows nothing of the upload counted in PostgreSQL: a full burst.
        expect(await statusesOf([frontend, frontend, frontend, frontend])).toEqual([202, 202, 202, 429]);
        await proxy.restore();
        // PostgreSQL again: 2 of 3 and 3 of 3, then refused.
        expect(await statusesOf([frontend, frontend, frontend])).toEqual([202, 202, 429]);

        expect(lines.map(({ level, message }) => [level, message.replace(/:.*$/s, '')])).toEqual([
          ['warn', 'the shared upload rate limit in PostgreSQL is out of reach; each frontend limits uploads on its own until it is back'],
          ['info', 'the shared upload rate limit in PostgreSQL is back in reach'],
        ]);
      } finally {
        await Promise.all(frontends.splice(0).map((frontend) => frontend.close()));
        await Promise.all(limiters.splice(0).map(async (limiter) => limiter.close?.()));
        await proxy.close();
      }
    });
  });
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  try {
    for (const prefix of redisKeyPrefixes) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
});
