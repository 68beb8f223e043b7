import { ConfigError, parseConfig } from '@pixelmill/kit';
import { pollTimeoutMs, WorkerConfigSchema } from '../../src/config';

describe('worker config', () => {
  it('when the environment is empty, then every variable has its default', () => {
    const config = parseConfig(WorkerConfigSchema, {});
    expect(config).toMatchObject({
      KV_URL: 'http://127.0.0.1:3000',
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: 1,
      POLL_WAIT_MS: 20_000,
      PNG_DEFLATE_LEVEL: 4,
      JPEG_QUALITY: 90,
      MAX_IMAGE_PIXELS: 50_000_000,
      SHUTDOWN_TIMEOUT_MS: 30_000,
    });
    expect(config.MASTER_URL).toBeUndefined();
    expect(config.STORAGE_URL).toBeUndefined();
  });

  it('reads overrides and numbers from strings', () => {
    const config = parseConfig(WorkerConfigSchema, {
      MASTER_URL: 'http://master.internal:3003',
      STORAGE_URL: 'https://storage.internal',
      WORKER_CONCURRENCY: '4',
      POLL_WAIT_MS: '0',
    });
    expect(config).toMatchObject({
      MASTER_URL: 'http://master.internal:3003',
      STORAGE_URL: 'https://storage.internal',
      WORKER_CONCURRENCY: 4,
      POLL_WAIT_MS: 0,
    });
  });

  it.each([
    ['MASTER_URL', { MASTER_URL: 'master:3003' }],
    ['WORKER_CONCURRENCY', { WORKER_CONCURRENCY: '0' }],
    ['POLL_WAIT_MS', { POLL_WAIT_MS: '60001' }],
    ['PNG_DEFLATE_LEVEL', { PNG_DEFLATE_LEVEL: '10' }],
    ['JPEG_QUALITY', { JPEG_QUALITY: 'high' }],
    ['ERROR_BACKOFF_MAX_MS', { ERROR_BACKOFF_MS: '5000', ERROR_BACKOFF_MAX_MS: '1000' }],
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
});
