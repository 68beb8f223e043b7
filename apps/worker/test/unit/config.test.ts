import { availableParallelism, totalmem } from 'node:os';
import { ConfigError, parseConfig } from '@pixelmill/kit';
import { pollTimeoutMs, WorkerConfigSchema } from '../../src/config';
import { threadHeapLimitMb } from '../../src/worker';

describe('worker config', () => {
  it('when the environment is empty, then every variable has its default', () => {
    const config = parseConfig(WorkerConfigSchema, {});
    expect(config).toMatchObject({
      KV_URL: 'http://127.0.0.1:3000',
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: Math.min(64, availableParallelism()),
      POLL_WAIT_MS: 20_000,
      PNG_DEFLATE_LEVEL: 4,
      JPEG_QUALITY: 90,
      MAX_IMAGE_PIXELS: 50_000_000,
      SHUTDOWN_TIMEOUT_MS: 20_000,
      ATTEMPT_TIMEOUT_MS: 120_000,
    });
    expect(config.MASTER_URL).toBeUndefined();
    expect(config.WORKER_TOKEN).toBeUndefined();
  });

  it('when METRICS_PORT is not set, then there is no metrics port; its host is loopback, and no token is asked', () => {
    const config = parseConfig(WorkerConfigSchema, {});
    expect(config.METRICS_PORT).toBeUndefined();
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.METRICS_TOKEN).toBeUndefined();
    expect(parseConfig(WorkerConfigSchema, { METRICS_PORT: '9464', HOST: '0.0.0.0' })).toMatchObject({
      METRICS_PORT: 9464,
      HOST: '0.0.0.0',
    });
  });

  it('when WORKER_TOKEN is empty, then it counts as unset', () => {
    expect(parseConfig(WorkerConfigSchema, { WORKER_TOKEN: '' }).WORKER_TOKEN).toBeUndefined();
  });

  it('has no storage address: storage is reached through the signed URLs of each task', () => {
    const config = parseConfig(WorkerConfigSchema, { STORAGE_URL: 'http://storage.internal:3002' });
    expect(config).not.toHaveProperty('STORAGE_URL');
  });

  it('reads overrides and numbers from strings', () => {
    const config = parseConfig(WorkerConfigSchema, {
      MASTER_URL: 'http://master.internal:3003',
      WORKER_TOKEN: 'a-worker-token-of-32-characters!',
      WORKER_CONCURRENCY: '4',
      POLL_WAIT_MS: '0',
      ATTEMPT_TIMEOUT_MS: '60000',
    });
    expect(config).toMatchObject({
      MASTER_URL: 'http://master.internal:3003',
      WORKER_TOKEN: 'a-worker-token-of-32-characters!',
      WORKER_CONCURRENCY: 4,
      POLL_WAIT_MS: 0,
      ATTEMPT_TIMEOUT_MS: 60_000,
    });
  });

  it.each([
    ['MASTER_URL', { MASTER_URL: 'master:3003' }],
    ['WORKER_TOKEN', { WORKER_TOKEN: 'too-short' }],
    ['ATTEMPT_TIMEOUT_MS', { ATTEMPT_TIMEOUT_MS: '0' }],
    ['WORKER_CONCURRENCY', { WORKER_CONCURRENCY: '0' }],
    ['POLL_WAIT_MS', { POLL_WAIT_MS: '60001' }],
    ['PNG_DEFLATE_LEVEL', { PNG_DEFLATE_LEVEL: '10' }],
    ['JPEG_QUALITY', { JPEG_QUALITY: 'high' }],
    ['ERROR_BACKOFF_MAX_MS', { ERROR_BACKOFF_MS: '5000', ERROR_BACKOFF_MAX_MS: '1000' }],
    ['METRICS_PORT', { METRICS_PORT: '65536' }],
    ['METRICS_TOKEN', { METRICS_TOKEN: 'too-short' }],
  ])('when %s is bad, then the error names it', (name, env) => {
    let thrown: unknown;
    try {
      parseConfig(WorkerConfigSchema, env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems.join('\n')).toMatch(new RegExp(`^${name}: `, 'm'));
  });

  it('gives the getWork call an HTTP timeout longer than its long poll', () => {
    const config = parseConfig(WorkerConfigSchema, { POLL_WAIT_MS: '20000', REQUEST_TIMEOUT_MS: '5000' });
    expect(pollTimeoutMs(config, config.POLL_WAIT_MS)).toBeGreaterThan(config.POLL_WAIT_MS);
    expect(pollTimeoutMs(config, 0)).toBeGreaterThan(0);
  });

  it('gives each transform thread a heap that fits a JPEG of MAX_IMAGE_PIXELS, within WORKER_MEMORY_MB, and no less than 64 MB', () => {
    // A 49-megapixel JPEG of 4:4:4 holds some 2.3 million blocks of about 200 bytes on the heap.
    expect(threadHeapLimitMb({ MAX_IMAGE_PIXELS: 50_000_000, WORKER_MEMORY_MB: 16_000 })).toBeGreaterThanOrEqual(1_100);
    expect(threadHeapLimitMb({ MAX_IMAGE_PIXELS: 50_000_000, WORKER_MEMORY_MB: 512 })).toBe(512);
    expect(threadHeapLimitMb({ MAX_IMAGE_PIXELS: 1_000, WORKER_MEMORY_MB: 512 })).toBe(64);
  });

  it('when WORKER_MEMORY_MB is not set, then it is half of the memory the process may use', () => {
    const config = parseConfig(WorkerConfigSchema, {});
    const constrained = process.constrainedMemory();
    const usable = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
    expect(config.WORKER_MEMORY_MB).toBe(Math.floor(usable / 2 / 2 ** 20));
    expect(config.TRANSFORM_TIMEOUT_MS).toBe(60_000);
  });

  it('when WORKER_MEMORY_MB is below 64, then the error names it', () => {
    expect(() => parseConfig(WorkerConfigSchema, { WORKER_MEMORY_MB: '63' })).toThrow(/WORKER_MEMORY_MB/);
    expect(parseConfig(WorkerConfigSchema, { WORKER_MEMORY_MB: '64', TRANSFORM_TIMEOUT_MS: '500' })).toMatchObject({
      WORKER_MEMORY_MB: 64,
      TRANSFORM_TIMEOUT_MS: 500,
    });
  });
});
