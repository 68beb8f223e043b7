import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import winston from 'winston';
import { ErrorBodySchema, type ErrorCode } from '@pixelmill/contracts';
import { Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { FORM_KEY_BYTES } from '../../src/routes/upload-form';
import { countBytesRead, endlessUpload, type EndlessUploadAnswer } from './endless-upload';
import { startFakeMaster, type FakeMaster } from './fake-master';

// Refusals that cost nothing: an upload refused is answered and its connection closed as soon as
// the refusal is known, however much the client still means to send.

const KEY = 'key-for-abuse-tests-0123456789';
const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BOUNDARY = 'pixelmill-test-boundary';
const FORM_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
const PNG_HEAD = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(64)]);

/** A form's opening as a browser sends it: fields, then the image part's headers; the image follows. */
function formOpening(fields: Record<string, string> = {}): Buffer {
  const parts = Object.entries(fields).map(
    ([name, value]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  const file = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`;
  return Buffer.concat([Buffer.from(parts.join('') + file, 'latin1'), PNG_HEAD]);
}

// A refused connection stays open, unread, for LINGER_MS before it is closed.
jest.setTimeout(15_000);

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('frontend under abuse', () => {
  let master: FakeMaster;
  let frontend: Listening;
  let bytesRead: ReturnType<typeof countBytesRead>;
  /** What the frontend logged, line by line. */
  let logged: Array<Record<string, unknown>>;

  const start = async ({ quotaBytes }: { quotaBytes?: number } = {}): Promise<void> => {
    master = await startFakeMaster({ quotaBytes });
    const lines: Array<Record<string, unknown>> = [];
    logged = lines;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const app = createApp({
      master: new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 5000 }).client('master'),
      logger: winston.createLogger({
        level: 'info',
        format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.json()),
        transports: [new winston.transports.Stream({ stream: sink })],
      }),
      maxUploadBytes: MAX_UPLOAD_BYTES,
      apiKeys: [KEY],
    });
    frontend = await listen(app, 0);
    bytesRead = countBytesRead(frontend.server);
  };

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  /** The answer was the refusal, the connection was closed after it, and the server read at most `maxRead` bytes. */
  const expectRefused = async (answer: EndlessUploadAnswer, status: number, code: ErrorCode, maxRead: number): Promise<string> => {
    expect(answer.status).toBe(status);
    expect(answer.headers.connection).toBe('close');
    expect(answer.closed).toBe(true);
    const body = ErrorBodySchema.parse(JSON.parse(answer.body));
    expect(body.error.code).toBe(code);
    await bytesRead.closed();
    expect(bytesRead.total()).toBeLessThan(maxRead);
    // The service is still up and serves the next client.
    expect((await fetch(`${frontend.url}/healthz`)).status).toBe(200);
    return body.error.message;
  };

  describe('an upload without a valid key', () => {
    beforeEach(() => start());

    it('when 2 GB come raw without a key, then the answer is 401 and the server has read less than 1 MB of them', async () => {
      const answer = await endlessUpload(frontend.url, {
        headers: { 'content-type': 'image/png', 'content-length': String(2 * GiB) },
        prefix: PNG_HEAD,
      });

      await expectRefused(answer, 401, 'unauthorized', MiB);
      expect(master.requests).toEqual([]);
    });

    it('when a 2 GB form sends no key field before its image, then the answer is 401 after less than 1 MB', async () => {
      const answer = await endlessUpload(frontend.url, {
        headers: { 'content-type': FORM_TYPE, 'content-length': String(2 * GiB) },
        prefix: formOpening({ op: 'swap-red-blue' }),
      });

      const message = await expectRefused(answer, 401, 'unauthorized', MiB);
      expect(message).toContain('"apiKey" before the image');
    });

    it(`when a form sends no key field within its first ${FORM_KEY_BYTES} bytes, then the answer is 401 after less than 1 MB`, async () => {
      // An endless preamble: the form never gets to a field at all.
      const answer = await endlessUpload(frontend.url, { headers: { 'content-type': FORM_TYPE, 'transfer-encoding': 'chunked' } });

      await expectRefused(answer, 401, 'unauthorized', MiB);
    });

    it('when a 2 GB form sends a wrong key field, then the answer is 401 invalid key after less than 1 MB', async () => {
      const answer = await endlessUpload(frontend.url, {
        headers: { 'content-type': FORM_TYPE, 'content-length': String(2 * GiB) },
        prefix: formOpening({ apiKey: `${KEY}-not` }),
      });

      expect(await expectRefused(answer, 401, 'unauthorized', MiB)).toBe('the API key is not valid');
    });
  });

  describe('an upload over the size limit, with a valid key', () => {
    beforeEach(() => start());

    it.each([
      ['raw', { 'content-type': 'image/png' }, PNG_HEAD],
      ['as a form', { 'content-type': FORM_TYPE }, formOpening()],
    ])('when 2 GB are declared %s, then the answer is 413 before the body is read', async (_how, headers, prefix) => {
      const answer = await endlessUpload(frontend.url, {
        headers: { ...headers, 'x-api-key': KEY, 'content-length': String(2 * GiB) },
        prefix,
      });

      await expectRefused(answer, 413, 'payload_too_large', MiB);
    });

    it.each([
      ['raw', { 'content-type': 'image/png' }, PNG_HEAD],
      ['as a form', { 'content-type': FORM_TYPE }, formOpening({ apiKey: KEY })],
    ])(
      'when an endless body comes %s without a declared length, then the answer is 413 as soon as the limit is passed',
      async (_how, headers, prefix) => {
        const answer = await endlessUpload(frontend.url, {
          headers: { ...headers, 'x-api-key': KEY, 'transfer-encoding': 'chunked' },
          prefix,
        });

        await expectRefused(answer, 413, 'payload_too_large', MAX_UPLOAD_BYTES + MiB / 4);
        expect(answer.sent).toBeLessThan(MAX_UPLOAD_BYTES + 32 * MiB);
        expect(master.newImageCalls).toEqual([]);
      },
    );
  });

  describe('a client that hangs up', () => {
    beforeEach(() => start());

    it('when it hangs up in the middle of a streamed upload, then that is logged at info, without a stack, not as master unreachable', async () => {
      // Above the streaming threshold (8 MiB): the bytes go on to master as they come.
      const req = http.request(`${frontend.url}/newImage`, {
        method: 'POST',
        headers: { 'content-type': 'image/png', 'x-api-key': KEY, 'content-length': String(20 * MiB) },
      });
      req.on('error', () => undefined);
      req.write(Buffer.concat([PNG_HEAD, Buffer.alloc(2 * MiB)]));
      await waitFor(() => master.requests.some((request) => request.path === '/newImage'));

      req.destroy();
      await waitFor(() => logged.length > 0);

      expect(logged.map((line) => [line.level, line.message])).toEqual([
        ['info', 'POST /newImage: the client hung up before its request was answered'],
      ]);
      expect(logged.filter((line) => 'stack' in line)).toEqual([]);
    });
  });

  describe('the storage quota', () => {
    it('when the owner has used up its quota, then an upload is refused with 429 before its body is read', async () => {
      await start({ quotaBytes: PNG_HEAD.length + 1000 });
      const first = await fetch(`${frontend.url}/newImage`, {
        method: 'POST',
        body: new Uint8Array(Buffer.concat([PNG_HEAD, randomBytes(1000)])),
        headers: { 'content-type': 'image/png', 'x-api-key': KEY },
      });
      expect(first.status).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // the quota is asked of master at most once a second
      bytesRead = countBytesRead(frontend.server); // the next connection's alone

      const answer = await endlessUpload(frontend.url, {
        headers: { 'content-type': 'image/png', 'x-api-key': KEY, 'content-length': String(2 * GiB) },
        prefix: PNG_HEAD,
      });

      const message = await expectRefused(answer, 429, 'quota_exceeded', MiB);
      expect(message).toMatch(/^the storage quota of 1072 bytes \(1072 bytes stored\) is used up/);
      expect(master.newImageCalls).toHaveLength(1);
    });

    it('when an upload declares more than is left of the quota, then it is refused with 429; a smaller one is taken', async () => {
      await start({ quotaBytes: 2000 });
      const upload = (bytes: number) =>
        fetch(`${frontend.url}/newImage`, {
          method: 'POST',
          body: new Uint8Array(Buffer.concat([PNG_HEAD, randomBytes(bytes - PNG_HEAD.length)])),
          headers: { 'content-type': 'image/png', 'x-api-key': KEY },
        });

      const tooMuch = await upload(3000);
      expect(tooMuch.status).toBe(429);
      const { error } = ErrorBodySchema.parse(await tooMuch.json());
      expect(error.code).toBe('quota_exceeded');
      expect(error.message).toMatch(/^this upload of 3000 bytes is more than is left of the storage quota of 2000 bytes/);
      expect((await upload(1500)).status).toBe(202);
    });
  });
});
