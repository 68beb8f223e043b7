import { ConfigError, parseConfig } from '@pixelmill/kit';
import { DEFAULT_UPLOAD_RATE_PER_MINUTE, FrontendConfigSchema, uploadRatePerMinute } from '../../src/config';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    parseConfig(FrontendConfigSchema, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('the configuration was accepted');
};

describe('frontend configuration', () => {
  it('when nothing is set, then the API is open and the limits have their defaults', () => {
    const config = parseConfig(FrontendConfigSchema, {});

    expect(config.API_KEYS).toBeUndefined();
    expect(config).toMatchObject({
      MAX_UPLOAD_BYTES: 25 * 1024 * 1024,
      MAX_IMAGE_PIXELS: 50_000_000,
      MAX_IMAGE_SIDE: 16_384,
      UPLOAD_BURST: 30,
      TRUST_PROXY_HOPS: 0,
      MAX_CONNECTIONS_PER_CLIENT: 64,
      HEADERS_TIMEOUT_MS: 20_000,
      BODY_TIMEOUT_MS: 120_000,
      RATE_LIMIT_PREFIX: 'pixelmill',
    });
    // Unset: decided by who can reach the frontend (below).
    expect(config.UPLOAD_RATE_PER_MINUTE).toBeUndefined();
    // No shared store: the upload rate limit is counted in-process.
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it('when API_KEYS lists keys, then they are split on commas with the spaces around them dropped', () => {
    const config = parseConfig(FrontendConfigSchema, { API_KEYS: ' first-key-0123456789 , second-key-0123456789,' });

    expect(config.API_KEYS).toEqual(['first-key-0123456789', 'second-key-0123456789']);
  });

  it.each([
    ['a key shorter than 16 characters', 'short', /API_KEYS.*at least 16/],
    ['only commas', ',,', /API_KEYS.*at least one key/],
    ['a key with a space inside', 'first key 0123456789', /API_KEYS.*without spaces/],
  ])('when API_KEYS has %s, then start-up stops with a message naming the variable', (_name, value, message) => {
    const problems = problemsOf({ API_KEYS: value });

    expect(problems.join('\n')).toMatch(message);
    // The message never repeats a key.
    expect(problems.join('\n')).not.toContain(value.trim() || 'never');
  });

  it.each([
    ['UPLOAD_RATE_PER_MINUTE', '-1'],
    ['UPLOAD_BURST', '0'],
    ['MAX_IMAGE_PIXELS', '0'],
    ['MAX_IMAGE_SIDE', 'wide'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['RATE_LIMIT_PREFIX', 'two words'],
    ['DATABASE_URL', 'mysql://127.0.0.1/pixelmill'],
  ])('when %s is %p, then start-up stops naming it', (name, value) => {
    expect(problemsOf({ [name]: value }).join('\n')).toContain(name);
  });

  describe('the upload rate limit in force', () => {
    const limitOf = (env: Record<string, string>) => uploadRatePerMinute(parseConfig(FrontendConfigSchema, env));

    it('when nothing is set, then there is none: only this machine can reach the frontend (the npm start stack)', () => {
      expect(limitOf({})).toBe(0);
      expect(limitOf({ HOST: 'localhost' })).toBe(0);
      expect(limitOf({ HOST: '::1' })).toBe(0);
    });

    it.each([
      ['it listens on every interface', { HOST: '0.0.0.0' }],
      ['it listens on another address', { HOST: '10.0.0.5' }],
      ['it believes a proxy in front', { TRUST_PROXY_HOPS: '1' }],
      ['it has API keys', { API_KEYS: 'first-key-0123456789' }],
    ])('when %s, then the default limit holds', (_case, env) => {
      expect(limitOf(env)).toBe(DEFAULT_UPLOAD_RATE_PER_MINUTE);
    });

    it('when UPLOAD_RATE_PER_MINUTE is set, then it wins, 0 included', () => {
      expect(limitOf({ UPLOAD_RATE_PER_MINUTE: '30' })).toBe(30);
      expect(limitOf({ HOST: '0.0.0.0', UPLOAD_RATE_PER_MINUTE: '0' })).toBe(0);
    });
  });
});
