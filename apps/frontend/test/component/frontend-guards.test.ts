import { randomBytes, randomUUID } from 'node:crypto';
import { AcceptedSchema, ErrorBodySchema, TaskStatusSchema, type ErrorCode } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { ownerIdOf } from '../../src/domain/api-keys';
import type { ImageLimits } from '../../src/domain/image-upload';
import { InProcessRateLimiter, type RateLimiter } from '../../src/domain/rate-limiter';
import { startFakeMaster, type FakeMaster, type FakeMasterOptions, type FakeTask } from './fake-master';

// The crash-, stranger- and bad-input side of the frontend: tokens, keys, idempotency, limits, headers.

const INTERNAL_TOKEN = 'internal-token-for-tests-0123456789';
const KEY_A = 'key-a-for-tests-0123456789';
const KEY_B = 'key-b-for-tests-0123456789';
const MAX_UPLOAD_BYTES = 4096;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A PNG's first bytes as the encoder writes them: the signature and an IHDR chunk declaring the size; then junk. */
function pngDeclaring(width: number, height: number, junkBytes = 100): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0); // the chunk's data length
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16); // bit depth
  ihdr.writeUInt8(6, 17); // RGBA; compression, filter and interlace 0; the CRC is left 0, no reader gets that far
  return Buffer.concat([PNG_SIGNATURE, ihdr, randomBytes(junkBytes)]);
}

/** A GIF whose logical screen declares the size; then its trailer (no frame), and junk no reader gets to. */
function gifDeclaring(width: number, height: number): Buffer {
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  return Buffer.concat([Buffer.from('GIF89a', 'latin1'), screen, Buffer.from([0x3b]), randomBytes(50)]);
}

const png = (): Buffer => pngDeclaring(64, 64);

/** A clock the test moves by hand, for the rate limit. */
const manualClock = () => {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
};

interface FrontendOptions {
  /** The INTERNAL_TOKEN the frontend sends to master, and asks of /metrics and /authz. */
  token?: string;
  apiKeys?: string[];
  uploadLimiter?: RateLimiter;
  imageLimits?: ImageLimits;
  trustProxyHops?: number;
}

describe('frontend guards', () => {
  let master: FakeMaster;
  let frontend: Listening;

  const start = async (options: FrontendOptions = {}, masterOptions: FakeMasterOptions = {}): Promise<void> => {
    master = await startFakeMaster(masterOptions);
    // As in main.ts: discovery carries the token, and the master client inherits it.
    const discovery = new Discovery({
      kvUrl: 'http://127.0.0.1:9',
      overrides: { master: master.url },
      token: options.token,
      timeoutMs: 2000,
    });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
      apiKeys: options.apiKeys,
      uploadLimiter: options.uploadLimiter,
      imageLimits: options.imageLimits,
      trustProxyHops: options.trustProxyHops,
      // As in main.ts: the same INTERNAL_TOKEN guards the frontend's /metrics and /authz.
      internalToken: options.token,
    });
    frontend = await listen(app, 0);
  };

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${frontend.url}${path}`, { headers });

  const uploadRaw = (body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${frontend.url}/newImage`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'content-type': 'image/png', accept: 'application/json', ...headers },
    });

  /** A form as the page posts it without JavaScript; `apiKey` goes before the file unless `keyAfterFile`. */
  const uploadForm = (file: Buffer, { apiKey, keyAfterFile = false }: { apiKey?: string; keyAfterFile?: boolean } = {}) => {
    const form = new FormData();
    const image = new Blob([new Uint8Array(file)], { type: 'image/png' });
    if (apiKey !== undefined && !keyAfterFile) form.append('apiKey', apiKey);
    form.append('image', image, 'picture.png');
    if (apiKey !== undefined && keyAfterFile) form.append('apiKey', apiKey);
    return fetch(`${frontend.url}/newImage`, { method: 'POST', body: form, headers: { accept: 'application/json' } });
  };

  const expectError = async (response: Response, status: number, code: ErrorCode): Promise<string> => {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = ErrorBodySchema.parse(await response.json());
    expect(body.error.code).toBe(code);
    expect((await get('/healthz')).status).toBe(200);
    return body.error.message;
  };

  const acceptedId = async (response: Response): Promise<string> => {
    expect(response.status).toBe(202);
    return AcceptedSchema.parse(await response.json()).id;
  };

  const addTask = (task: Partial<FakeTask> & Pick<FakeTask, 'state'>): FakeTask => {
    const full: FakeTask = { id: randomUUID(), op: 'swap-red-blue', contentType: 'image/png', bytes: png(), ...task };
    master.tasks.set(full.id, full);
    return full;
  };

  describe('INTERNAL_TOKEN', () => {
    it('when master needs the token and the frontend has it, then every call to master carries it', async () => {
      await start({ token: INTERNAL_TOKEN }, { internalToken: INTERNAL_TOKEN });
      const id = await acceptedId(await uploadRaw(png()));
      master.tasks.get(id)!.state = 'finished';
      master.tasks.get(id)!.result = { bytes: png(), contentType: 'image/png' };

      expect((await get(`/image/isReady?id=${id}`)).status).toBe(200);
      expect((await get(`/image/get?id=${id}`)).status).toBe(200);
      // The quota is asked before the upload's body is read.
      expect(master.requests.map((r) => r.path)).toEqual(['/usage', '/newImage', '/isReady', '/get']);
      for (const request of master.requests) expect(request.authorization).toBe(`Bearer ${INTERNAL_TOKEN}`);
    });

    it('when master needs the token and the frontend lacks it, then master refuses and the upload answers 503', async () => {
      await start({}, { internalToken: INTERNAL_TOKEN });

      await expectError(await uploadRaw(png()), 503, 'unavailable');
      expect(master.requests.length).toBeGreaterThan(0);
      expect(master.newImageCalls).toEqual([]);
      expect(master.tasks.size).toBe(0);
    });
  });

  describe('INTERNAL_TOKEN and /readyz', () => {
    const OTHER_TOKEN = 'another-internal-token-0123456789';

    it('when master holds the same token, then the frontend is ready, from one call to master that carried it', async () => {
      await start({ token: INTERNAL_TOKEN }, { internalToken: INTERNAL_TOKEN });

      const ready = await get('/readyz');

      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', service: 'frontend', checks: { master: 'ok' } });
      expect(master.requests.map(({ path, authorization }) => ({ path, authorization }))).toEqual([
        { path: '/authz', authorization: `Bearer ${INTERNAL_TOKEN}` },
      ]);
    });

    it('when master was started with another token, then /readyz is 503 with master unauthorized, and shows no token', async () => {
      await start({ token: INTERNAL_TOKEN }, { internalToken: OTHER_TOKEN });

      const ready = await get('/readyz');

      expect(ready.status).toBe(503);
      const text = await ready.text();
      expect(JSON.parse(text)).toEqual({ status: 'not_ready', service: 'frontend', checks: { master: 'unauthorized' } });
      expect(text).not.toContain(INTERNAL_TOKEN);
      expect(text).not.toContain(OTHER_TOKEN);
    });

    it('when master needs a token and the frontend has none, then master is unauthorized', async () => {
      await start({}, { internalToken: INTERNAL_TOKEN });
      const ready = await get('/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { master: 'unauthorized' } });
    });

    it('when master runs open, then the frontend is ready whatever token it holds', async () => {
      await start({ token: INTERNAL_TOKEN });
      expect((await get('/readyz')).status).toBe(200);
      expect(master.requests.map((r) => r.path)).toEqual(['/authz']);
    });

    it("when the frontend's own GET /authz is called, then it asks for INTERNAL_TOKEN, as the frontend's /metrics does", async () => {
      await start({ token: INTERNAL_TOKEN }, { internalToken: INTERNAL_TOKEN });
      expect((await get('/authz')).status).toBe(401);
      expect((await get('/authz', { authorization: `Bearer ${OTHER_TOKEN}` })).status).toBe(401);
      expect((await get('/authz', { authorization: `Bearer ${INTERNAL_TOKEN}` })).status).toBe(204);
    });

    it('when the frontend has no INTERNAL_TOKEN, then its GET /authz is open', async () => {
      await start();
      expect((await get('/authz', { authorization: `Bearer ${OTHER_TOKEN}` })).status).toBe(204);
    });
  });

  describe('API_KEYS', () => {
    beforeEach(() => start({ apiKeys: [KEY_A, KEY_B] }));

    it.each([
      ['a raw upload', () => uploadRaw(png())],
      ['a form without the key field', () => uploadForm(png())],
      ['isReady', () => get(`/image/isReady?id=${randomUUID()}`)],
      ['get', () => get(`/image/get?id=${randomUUID()}`)],
    ])('when %s comes without a key, then it is refused with 401 and a WWW-Authenticate challenge', async (_name, send) => {
      const response = await send();
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="pixelmill"');

      const message = await expectError(response, 401, 'unauthorized');
      expect(message).toMatch(/Authorization: Bearer <key>/);
      expect(message).toMatch(/x-api-key: <key>/i);
      expect(master.requests).toEqual([]);
    });

    it.each([
      ['a wrong bearer key', () => uploadRaw(png(), { authorization: 'Bearer not-one-of-the-keys-0123' })],
      ['a wrong X-API-Key', () => uploadRaw(png(), { 'x-api-key': `${KEY_A}x` })],
      ['a wrong form key', () => uploadForm(png(), { apiKey: KEY_A.slice(0, -1) })],
      ['isReady with a wrong key', () => get(`/image/isReady?id=${randomUUID()}`, { 'x-api-key': 'nope' })],
    ])('when %s is sent, then it is refused with 401 invalid_token', async (_name, send) => {
      const response = await send();
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="pixelmill", error="invalid_token"');

      expect(await expectError(response, 401, 'unauthorized')).toBe('the API key is not valid');
      expect(master.requests).toEqual([]);
    });

    it.each([
      ['Authorization: Bearer', () => uploadRaw(png(), { authorization: `Bearer ${KEY_A}` })],
      ['X-API-Key', () => uploadRaw(png(), { 'x-api-key': KEY_A })],
      ['the form field apiKey (the page without JavaScript)', () => uploadForm(png(), { apiKey: KEY_A })],
    ])('when the key comes as %s, then the upload is accepted and master gets its owner id, never the key', async (_name, send) => {
      await acceptedId(await send());

      expect(master.newImageCalls).toHaveLength(1);
      expect(master.newImageCalls[0]!.owner).toBe(ownerIdOf(KEY_A));
      expect(JSON.stringify(master.requests)).not.toContain(KEY_A);
    });

    it('when a form sends its key after the file, then it is refused with 401 saying to send it first', async () => {
      const message = await expectError(await uploadForm(png(), { apiKey: KEY_A, keyAfterFile: true }), 401, 'unauthorized');

      expect(message).toContain('"apiKey" before the image');
      expect(master.requests).toEqual([]);
    });

    it('when an upload larger than the limit comes without a key, then it is refused with 401 before its body is read', async () => {
      const response = await uploadRaw(Buffer.concat([png(), randomBytes(MAX_UPLOAD_BYTES * 4)]));

      await expectError(response, 401, 'unauthorized');
    });

    it('when key A uploads, then key B gets 404 on isReady and get, as for an unknown id, and key A gets its image', async () => {
      const id = await acceptedId(await uploadRaw(png(), { 'x-api-key': KEY_A }));
      const task = master.tasks.get(id)!;
      task.state = 'finished';
      task.result = { bytes: png(), contentType: 'image/png' };

      const otherKeyMessage = await expectError(await get(`/image/isReady?id=${id}`, { 'x-api-key': KEY_B }), 404, 'not_found');
      expect(otherKeyMessage).toBe(
        await expectError(await get(`/image/isReady?id=${randomUUID()}`, { 'x-api-key': KEY_B }), 404, 'not_found').then((message) =>
          message.replace(/[0-9a-f-]{36}/, id),
        ),
      );
      await expectError(await get(`/image/get?id=${id}`, { authorization: `Bearer ${KEY_B}` }), 404, 'not_found');

      const own = await get(`/image/isReady?id=${id}`, { 'x-api-key': KEY_A });
      expect(own.status).toBe(200);
      expect(own.headers.get('cache-control')).toBe('private, no-store');
      expect(TaskStatusSchema.parse(await own.json())).toEqual({ id, state: 'finished' });
      const result = await get(`/image/get?id=${id}`, { authorization: `Bearer ${KEY_A}` });
      expect(result.status).toBe(200);
      expect(Buffer.from(await result.arrayBuffer()).equals(task.result.bytes)).toBe(true);
    });

    it('when key B asks for a task of key A that is not finished, then the answer is still 404, not its state', async () => {
      const id = await acceptedId(await uploadRaw(png(), { 'x-api-key': KEY_A }));

      await expectError(await get(`/image/get?id=${id}`, { 'x-api-key': KEY_B }), 404, 'not_found');
    });

    it('serves the page with a password field for the key, first in the form', async () => {
      const html = await (await get('/')).text();

      expect(html).toContain('<input id="api-key" type="password" name="apiKey" autocomplete="off" required>');
      expect(html.indexOf('name="apiKey"')).toBeLessThan(html.indexOf('name="image"'));
    });

    it('when the status page is opened with ?id=, then it says a key is needed instead of asking master', async () => {
      const task = addTask({ state: 'in_progress', owner: ownerIdOf(KEY_A) });
      const html = await (await get(`/?id=${task.id}`)).text();

      expect(html).toContain('is shown only with the API key that uploaded it');
      expect(html).toContain('data-needs-key="true"');
      expect(html).not.toContain('data-state=');
      expect(html).not.toContain('http-equiv="refresh"');
      expect(master.requests).toEqual([]);
    });
  });

  describe('without API_KEYS', () => {
    beforeEach(() => start());

    it('when an upload comes without a key, then it is accepted and master gets no owner', async () => {
      await acceptedId(await uploadRaw(png()));

      expect(master.newImageCalls).toHaveLength(1);
      expect(master.newImageCalls[0]!.owner).toBeUndefined();
    });

    it('the page has no key field', async () => {
      expect(await (await get('/')).text()).not.toContain('apiKey');
    });
  });

  describe('Idempotency-Key', () => {
    beforeEach(() => start());

    it("when the client sends one, then master gets the client's key", async () => {
      await acceptedId(await uploadRaw(png(), { 'idempotency-key': 'upload-42' }));

      expect(master.newImageCalls.map((call) => call.idempotencyKey)).toEqual(['upload-42']);
    });

    it('when the client sends the same key twice, then both answers name the same task and there is one', async () => {
      const image = png();
      const first = await acceptedId(await uploadRaw(image, { 'idempotency-key': 'upload-43' }));
      const second = await acceptedId(await uploadRaw(image, { 'idempotency-key': 'upload-43' }));

      expect(second).toBe(first);
      expect(master.tasks.size).toBe(1);
    });

    it('when the client sends none, then each upload goes to master with a new random UUID', async () => {
      await acceptedId(await uploadRaw(png()));
      await acceptedId(await uploadForm(png()));

      const keys = master.newImageCalls.map((call) => call.idempotencyKey);
      expect(keys).toHaveLength(2);
      for (const key of keys) expect(key).toMatch(UUID_V4);
      expect(keys[0]).not.toBe(keys[1]);
    });

    it("when master's answer to an upload streamed on is lost, then it is a 503, and the client's key sent again gets the first task", async () => {
      master.loseNextAnswer = true;
      const image = png();

      // Its bytes are gone once sent on: the frontend cannot send them again, the client can.
      const lost = await uploadRaw(image, { 'idempotency-key': 'upload-44' });
      expect(lost.status).toBe(503);
      expect(master.newImageCalls).toHaveLength(1);
      const id = await acceptedId(await uploadRaw(image, { 'idempotency-key': 'upload-44' }));

      expect(master.newImageCalls.map((call) => call.idempotencyKey)).toEqual(['upload-44', 'upload-44']);
      expect([...master.tasks.keys()]).toEqual([id]);
    });

    it('when the key is malformed, then the upload is refused with 400 naming the header', async () => {
      const message = await expectError(await uploadRaw(png(), { 'idempotency-key': 'has spaces in it' }), 400, 'bad_request');

      expect(message).toContain('idempotency-key');
      expect(master.newImageCalls).toEqual([]);
    });
  });

  describe('declared image size', () => {
    it.each([
      ['a raw body', (body: Buffer) => uploadRaw(body)],
      ['a form', (body: Buffer) => uploadForm(body)],
    ])('when %s is a PNG declaring 100000×100000 pixels, then it is refused with 413 from the header alone', async (_name, send) => {
      await start();
      const bomb = pngDeclaring(100_000, 100_000);
      expect(bomb.length).toBeLessThan(200);

      const message = await expectError(await send(bomb), 413, 'payload_too_large');

      expect(message).toBe('the image declares 100,000×100,000 pixels (10,000,000,000 in all); the limit is 50,000,000 pixels');
      expect(master.newImageCalls).toEqual([]);
    });

    it('when a side is longer than 16384 pixels, then it is refused with 413 naming the side limit', async () => {
      await start();

      const message = await expectError(await uploadRaw(pngDeclaring(16_385, 1)), 413, 'payload_too_large');
      expect(message).toBe('the image declares 16,385×1 pixels; the limit is 16,384 pixels a side');
      await acceptedId(await uploadRaw(pngDeclaring(16_384, 1)));
      expect(master.newImageCalls).toHaveLength(1);
    });

    it('when the limits are configured, then images are held to them, in every format that declares its size', async () => {
      await start({ imageLimits: { maxPixels: 1000, maxSide: 100 } });

      await expectError(await uploadRaw(pngDeclaring(40, 40)), 413, 'payload_too_large');
      await expectError(await uploadRaw(pngDeclaring(101, 1)), 413, 'payload_too_large');
      await expectError(await uploadRaw(gifDeclaring(40, 40), { 'content-type': 'image/gif' }), 413, 'payload_too_large');
      expect(master.newImageCalls).toEqual([]);

      await acceptedId(await uploadRaw(pngDeclaring(100, 10)));
      await acceptedId(await uploadRaw(gifDeclaring(10, 100), { 'content-type': 'image/gif' }));
    });

    it('when the header cannot be read, then the upload goes through and the worker judges it', async () => {
      await start();
      const damaged = Buffer.concat([PNG_SIGNATURE, Buffer.from('not an IHDR chunk at all')]);

      await acceptedId(await uploadRaw(damaged));
    });
  });

  describe('upload rate limit', () => {
    it('when a client uploads faster than the limit, then it gets 429 with Retry-After, and again 202 once a token is back', async () => {
      const clock = manualClock();
      await start({ uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 60, burst: 2, now: clock.now }) });
      await acceptedId(await uploadRaw(png()));
      await acceptedId(await uploadForm(png()));

      const refused = await uploadRaw(png());
      expect(refused.headers.get('retry-after')).toBe('1');
      const message = await expectError(refused, 429, 'too_many_requests');
      expect(message).toMatch(/try again in 1 s/);
      expect(master.newImageCalls).toHaveLength(2);

      clock.advance(1000);
      await acceptedId(await uploadRaw(png()));
      expect(master.newImageCalls).toHaveLength(3);
    });

    it('when reading tasks, then there is no limit', async () => {
      await start({ uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, now: () => 0 }) });
      const id = await acceptedId(await uploadRaw(png()));
      await expectError(await uploadRaw(png()), 429, 'too_many_requests');

      for (let i = 0; i < 3; i += 1) expect((await get(`/image/isReady?id=${id}`)).status).toBe(200);
    });

    it('when keys are on, then each key has its own bucket, the form field key included, and strangers take from none', async () => {
      await start({ apiKeys: [KEY_A, KEY_B], uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, now: () => 0 }) });
      await expectError(await uploadRaw(png()), 401, 'unauthorized');
      await acceptedId(await uploadForm(png(), { apiKey: KEY_A }));

      const refused = await uploadForm(png(), { apiKey: KEY_A });
      expect(refused.headers.get('retry-after')).toBe('60');
      await expectError(refused, 429, 'too_many_requests');
      await expectError(await uploadRaw(png(), { 'x-api-key': KEY_A }), 429, 'too_many_requests');
      await acceptedId(await uploadRaw(png(), { 'x-api-key': KEY_B }));
    });
  });

  describe.each([
    [0, 'one bucket: the proxy is the client', [202, 429]],
    [1, 'a bucket per address the proxy names', [202, 202]],
  ])('behind a proxy, with TRUST_PROXY_HOPS=%p', (hops, meaning, statuses) => {
    it(`counts uploads from two forwarded addresses in ${meaning}`, async () => {
      await start({ trustProxyHops: hops, uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, now: () => 0 }) });

      const first = await uploadRaw(png(), { 'x-forwarded-for': '203.0.113.1' });
      const second = await uploadRaw(png(), { 'x-forwarded-for': '203.0.113.2' });

      expect([first.status, second.status]).toEqual(statuses);
    });
  });

  describe('security headers', () => {
    /** The upload page's and the docs page's policies as they were written by hand before helmet sent them. */
    const PAGE_POLICY =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
      "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    const DOCS_POLICY =
      "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
      "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    /** Every header besides the CSP, as helmet is configured (security-headers.ts says why for each). */
    const HEADERS = {
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-resource-policy': 'same-origin',
      'origin-agent-cluster': '?1',
      'strict-transport-security': 'max-age=31536000',
      'x-dns-prefetch-control': 'off',
      'x-download-options': 'noopen',
      'x-permitted-cross-domain-policies': 'none',
      'x-xss-protection': '0',
    };
    /** Helmet's Cross-Origin-Embedder-Policy is off, its Opener-Policy is for https only; X-Powered-By is removed. */
    const ABSENT_HEADERS = ['cross-origin-embedder-policy', 'cross-origin-opener-policy', 'x-powered-by'];

    /** A policy as its directives, each with its sources sorted: the same policy however it is spaced or ordered. */
    const directives = (policy: string | null): Record<string, string[]> =>
      Object.fromEntries(
        (policy ?? '')
          .split(';')
          .map((directive) => directive.trim().split(/\s+/))
          .filter(([name]) => name !== '')
          .map(([name, ...sources]) => [name!.toLowerCase(), sources.sort()]),
      );

    const expectSecurityHeaders = (response: Response, policy = PAGE_POLICY): void => {
      const sent = Object.fromEntries(Object.keys(HEADERS).map((name) => [name, response.headers.get(name)]));
      expect(sent).toEqual(HEADERS);
      for (const name of ABSENT_HEADERS) expect([name, response.headers.get(name)]).toEqual([name, null]);
      expect(directives(response.headers.get('content-security-policy'))).toEqual(directives(policy));
    };

    it("when the pages are read, then the upload page and the docs page keep their policies, directive for directive, and their files get the page's", async () => {
      await start();
      const task = addTask({ state: 'finished', result: { bytes: png(), contentType: 'image/png' } });
      const expected: Array<[string, string]> = [
        ['/', PAGE_POLICY],
        [`/?id=${task.id}`, PAGE_POLICY],
        ['/docs', DOCS_POLICY],
        ['/docs/', DOCS_POLICY],
        ['/docs.js', PAGE_POLICY],
        ['/docs/assets/swagger-ui.css', PAGE_POLICY],
        ['/docs/assets/swagger-ui-bundle.js', PAGE_POLICY],
      ];

      for (const [path, policy] of expected) {
        const response = await get(path);
        await response.arrayBuffer();
        expect([path, response.status]).toEqual([path, 200]);
        const sent = directives(response.headers.get('content-security-policy'));
        expect([path, sent]).toEqual([path, directives(policy)]);
      }
    });

    it('when a trusted TLS proxy says https, then Cross-Origin-Opener-Policy is sent, and over http it is not (browsers heed it over https only)', async () => {
      await start({ trustProxyHops: 1 });
      const expected: Array<[string, string | null]> = [
        ['https', 'same-origin'],
        ['http', null],
      ];

      for (const [protocol, policy] of expected) {
        for (const path of ['/', '/docs', '/healthz', '/no/such/page']) {
          const response = await get(path, { 'x-forwarded-proto': protocol });
          await response.arrayBuffer();
          expect([protocol, path, response.headers.get('cross-origin-opener-policy')]).toEqual([protocol, path, policy]);
        }
      }
    });

    it('are on the page, the static files, the API and health answers', async () => {
      await start();
      const task = addTask({ state: 'finished', result: { bytes: png(), contentType: 'image/png' } });

      for (const path of [
        '/',
        `/?id=${task.id}`,
        '/app.js',
        '/style.css',
        '/favicon.svg',
        '/docs.js',
        '/healthz',
        '/readyz',
        '/openapi.json',
      ]) {
        const response = await get(path);
        await response.arrayBuffer();
        expect([path, response.status]).toEqual([path, 200]);
        expectSecurityHeaders(response);
      }
      const docs = await get('/docs');
      await docs.arrayBuffer();
      expectSecurityHeaders(docs, DOCS_POLICY);
      for (const path of [`/image/isReady?id=${task.id}`, `/image/get?id=${task.id}`]) {
        const response = await get(path);
        expect(response.status).toBe(200);
        expectSecurityHeaders(response);
      }
      const accepted = await uploadRaw(png());
      expect(accepted.status).toBe(202);
      expectSecurityHeaders(accepted);
    });

    it('are on error answers too: 400, 401, 404, 405, 413, 414, 429 and 503', async () => {
      await start({ apiKeys: [KEY_A], uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, now: () => 0 }) });
      const withKey = { 'x-api-key': KEY_A };
      // In this order: the refused 413 upload spends the only token, so the next upload gets 429.
      const answers: Array<[number, () => Promise<Response>]> = [
        [400, () => get('/image/isReady?id=nope', withKey)],
        [401, () => get(`/image/isReady?id=${randomUUID()}`)],
        [404, () => get('/no/such/page')],
        [404, () => get(`/image/isReady?id=${randomUUID()}`, withKey)],
        [405, () => fetch(`${frontend.url}/image/get?id=${randomUUID()}`, { method: 'DELETE' })],
        [413, () => uploadRaw(pngDeclaring(100_000, 100_000), withKey)],
        [414, () => get(`/?id=${'x'.repeat(9000)}`)],
        [429, () => uploadRaw(png(), withKey)],
      ];
      for (const [status, send] of answers) {
        const response = await send();
        expect([status, response.status]).toEqual([status, status]);
        expectSecurityHeaders(response);
        await response.arrayBuffer();
      }
      await master.close();
      const unavailable = await get(`/image/isReady?id=${randomUUID()}`, withKey);
      expect(unavailable.status).toBe(503);
      expectSecurityHeaders(unavailable);
      master = await startFakeMaster(); // so afterEach has a server to close
    });
  });
});
