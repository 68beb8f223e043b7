import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AcceptedSchema, ErrorBodySchema, frontendContract, resultKey, WorkSchema, type Work } from '@pixelmill/contracts';
import { ContractClient } from '@pixelmill/kit';
import { encode, makeBitmap } from './images';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;

const KEY_A = 'abuse-key-a-0123456789';
const KEY_B = 'abuse-key-b-0123456789';
/** Used by the quota test alone. */
const KEY_C = 'abuse-key-c-0123456789';
/** Each key may keep this many bytes: a few small images. */
const QUOTA_BYTES = 64 * 1024;
/** Ended tasks expire this long after their end. */
const RETENTION_MS = 1_500;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** The frontend's time for a request's headers, and for a whole request. */
const HEADERS_TIMEOUT_MS = 1_000;
const BODY_TIMEOUT_MS = 3_000;
/** Connections one address may hold open at the frontend. */
const MAX_CONNECTIONS = 32;

/**
 * The stack held against abuse, as separate processes: retention and quotas with short settings,
 * idempotency keys bound to their first upload, and results bound to the attempt that made them.
 * No worker runs: the test takes the worker's place on master's worker side, so it can also be
 * the worker whose lease was lost, or one that uploads junk.
 */
describe('pixelmill under abuse', () => {
  let dir: string;
  let stack: Stack;
  let frontend: string;
  let master: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-abuse-'));
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      workers: 0,
      envFor: {
        frontend: {
          API_KEYS: `${KEY_A},${KEY_B},${KEY_C}`,
          UPLOAD_RATE_PER_MINUTE: '0',
          HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
          BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
          MAX_CONNECTIONS_PER_CLIENT: String(MAX_CONNECTIONS),
        },
        master: {
          RETENTION_HOURS: String(RETENTION_MS / 3_600_000),
          HOUSEKEEPING_INTERVAL_MS: '100',
          QUOTA_BYTES_PER_KEY: String(QUOTA_BYTES),
        },
      },
    });
    frontend = stack.urls.frontend!;
    master = stack.urls.master!;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const storageFile = (state: string, key: string) => path.join(stack.dataDir, 'storage', state, key);
  const upload = (bytes: Buffer, key: string, headers: Record<string, string> = {}) =>
    fetch(`${frontend}/newImage`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/png', accept: 'application/json', 'x-api-key': key, ...headers },
    });
  /** A client of the public contract with `key`: it checks every answer against the contract. */
  const asClientOf = (key: string) => new ContractClient({ service: 'frontend', baseUrl: frontend, token: key, retries: 0 });
  const accepted = async (response: Response): Promise<string> => {
    expect(response.status).toBe(202);
    return AcceptedSchema.parse(await response.json()).id;
  };
  const asWorker = (route: string, init: RequestInit = {}) =>
    fetch(`${master}${route}`, {
      ...init,
      headers: { authorization: `Bearer ${stack.tokens!.worker}`, 'content-type': 'application/json', ...init.headers },
    });
  const claim = async (): Promise<Work> => {
    const response = await asWorker('/getWork?waitMs=5000');
    expect(response.status).toBe(200);
    return WorkSchema.parse(await response.json());
  };
  const report = (route: 'workFinished' | 'workReleased', work: Work) =>
    asWorker(`/${route}`, { method: 'POST', body: JSON.stringify({ id: work.id, leaseToken: work.leaseToken, reason: 'lost' }) });
  const storeResult = (work: Work, bytes: Buffer, contentType = 'image/png') =>
    fetch(work.resultUrl, { method: 'POST', body: bytes, headers: { 'content-type': contentType } });
  const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /** The status of a POST, read as soon as it comes: a refusal may close the connection before the body is sent. */
  const postAnswer = (url: string, body: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = http.request(
        url,
        { method: 'POST', headers: { 'content-type': 'image/png', 'content-length': body.length } },
        (response) => {
          response.resume();
          resolve(response.statusCode!);
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  const errorOf = async (response: Response) => ErrorBodySchema.parse(await response.json()).error;

  it("when a lost lease's worker uploads late, then the user still downloads the result of the attempt that finished", async () => {
    const source = await encode('image/png', makeBitmap(24, 24));
    const id = await accepted(await upload(source, KEY_A));
    const stale = await claim();
    expect((await report('workReleased', stale)).status).toBe(200);
    const current = await claim();
    expect(current).toMatchObject({ id, attempt: 2 });

    const result = await encode('image/png', makeBitmap(24, 24, { alpha: true }));
    expect((await storeResult(current, result)).status).toBe(201);
    expect((await report('workFinished', current)).status).toBe(200);
    // The stale attempt writes under its own key, and cannot end the task.
    const late = await encode('image/png', makeBitmap(24, 24, { colors: 2 }));
    await storeResult(stale, late);
    expect((await report('workFinished', stale)).status).toBe(409);
    expect((await storeResult(current, late)).status).toBe(409);

    const download = await fetch(`${frontend}/image/get?id=${id}`, { headers: { 'x-api-key': KEY_A } });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(result);
  });

  it('when a worker stores junk or an oversized result, then storage or master refuses it and the task does not finish', async () => {
    const id = await accepted(await upload(await encode('image/png', makeBitmap(16, 16)), KEY_B));
    const work = await claim();
    expect(work.id).toBe(id);
    // 12 bytes of junk after a JPEG signature, for a PNG task.
    const junk = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(12, 0x41)]);
    expect((await storeResult(work, junk, 'image/jpeg')).status).toBe(201);
    const refused = await report('workFinished', work);
    expect(refused.status).toBe(422);
    expect((await errorOf(refused)).message).toMatch(/is a image\/jpeg, not a image\/png/);
    // 16×16 pixels cannot honestly take a megabyte: refused by the signed URL's bound.
    const huge = Buffer.concat([await encode('image/png', makeBitmap(16, 16)), Buffer.alloc(1024 * 1024)]);
    expect(await postAnswer(work.resultUrl, huge)).toBe(413);
    const status = await fetch(`${frontend}/image/isReady?id=${id}`, { headers: { 'x-api-key': KEY_B } });
    expect(await status.json()).toEqual({ id, state: 'in_progress' });
    expect((await report('workReleased', work)).status).toBe(200);
  });

  it('when an ended task passes its retention, then its source goes first, then everything, and the id answers 410', async () => {
    const source = await encode('image/png', makeBitmap(8, 8));
    const id = await accepted(await upload(source, KEY_A));
    expect(fs.existsSync(storageFile('inProgress', id))).toBe(true);
    const work = await claim();
    expect((await storeResult(work, await encode('image/png', makeBitmap(8, 8, { alpha: true })))).status).toBe(201);
    expect((await report('workFinished', work)).status).toBe(200);
    const ended = Date.now();

    // The source is no longer needed once the task ended; the result stays for the retention time.
    await until('source deleted', () => !fs.existsSync(storageFile('inProgress', id)));
    if (Date.now() - ended < RETENTION_MS - 200) {
      expect(fs.existsSync(storageFile('finished', resultKey(id, work.attempt)))).toBe(true);
    }
    await until('result expired', () => !fs.existsSync(storageFile('finished', resultKey(id, work.attempt))));
    // Through the public contract, which must declare the answer (a client of it refuses undocumented ones).
    const client = asClientOf(KEY_A);
    for (const gone of [
      await client.call(frontendContract.isReady, { query: { id } }),
      await client.call(frontendContract.get, { query: { id } }),
    ]) {
      expect(gone.status).toBe(410);
      expect(ErrorBodySchema.parse(gone.body).error.code).toBe('gone');
    }
  });

  it('when a key has stored its quota, then its next upload is a 429 that says so, and other keys are not affected', async () => {
    const image = await encode('image/png', makeBitmap(64, 64, { alpha: true }));
    // No worker runs, so every source stays stored: exactly this many fit.
    const fitting = Math.floor(QUOTA_BYTES / image.length);
    expect(fitting).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < fitting; i += 1) expect((await upload(image, KEY_C)).status).toBe(202);
    const refused = await upload(image, KEY_C);
    expect(refused.status).toBe(429);
    // Every 429 says when to try again.
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const error = await errorOf(refused);
    expect(error.code).toBe('quota_exceeded');
    expect(error.message).toMatch(/quota/);
    expect((await upload(await encode('image/png', makeBitmap(4, 4)), KEY_A)).status).toBe(202);
  });

  /** Sends the head of a POST that declares `declaredBytes`, then `sendBytes` of it; resolves with the answer, if one comes. */
  const partialPost = (url: string, headers: Record<string, string>, declaredBytes: number, sendBytes: number) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'image/png', accept: 'application/json', 'content-length': String(declaredBytes), ...headers },
    });
    req.on('error', () => undefined); // the server closing on a client still sending
    req.write(Buffer.concat([PNG_SIGNATURE, Buffer.alloc(sendBytes - PNG_SIGNATURE.length)]));
    const answer = new Promise<{ status: number; connection?: string; body: string }>((resolve) =>
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
      }),
    );
    return { req, answer };
  };
  const logLines = (service: string): Array<Record<string, unknown>> =>
    fs
      .readFileSync(path.join(dir, 'logs', `${service}.log`), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  it('when 2 GB are sent without a key, then the 401 comes after the first megabyte and the connection is closed', async () => {
    const { req, answer } = partialPost(`${frontend}/newImage`, {}, 2 * 1024 ** 3, 1024 * 1024);

    const refused = await answer;
    req.destroy();
    expect(refused.status).toBe(401);
    expect(refused.connection).toBe('close');
    expect(ErrorBodySchema.parse(JSON.parse(refused.body)).error.code).toBe('unauthorized');
    expect((await fetch(`${frontend}/healthz`)).status).toBe(200);
  });

  it('when a client hangs up in the middle of an upload to storage, then storage logs that at info, without a stack', async () => {
    const before = logLines('storage').length;
    const { req } = partialPost(
      `${stack.urls.storage!}/objects/inProgress/${randomUUID()}`,
      { authorization: `Bearer ${stack.tokens!.internal}` },
      4 * 1024 * 1024,
      1024 * 1024,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    req.destroy();
    await new Promise((resolve) => setTimeout(resolve, 700));

    const lines = logLines('storage').slice(before);
    expect(lines.map((line) => [line.level, line.message])).toContainEqual([
      'info',
      expect.stringMatching(/^POST \/objects\/inProgress\/[\w-]+: the client hung up before its request was answered$/),
    ]);
    expect(lines.filter((line) => line.level === 'error' || line.level === 'warn' || 'stack' in line)).toEqual([]);
    expect((await fetch(`${stack.urls.storage!}/healthz`)).status).toBe(200);
  });

  /** Opens a raw connection to the frontend, writes `text`, and resolves with all it gets back until the frontend closes it. */
  const rawExchange = (text: string, timeoutMs = 10_000) =>
    new Promise<{ answer: string; ms: number }>((resolve, reject) => {
      const started = Date.now();
      const socket = net.connect(Number(new URL(frontend).port), '127.0.0.1', () => socket.write(text));
      let answer = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the frontend did not close the connection within ${timeoutMs} ms; got: ${answer}`));
      }, timeoutMs);
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ answer, ms: Date.now() - started });
      });
    });
  const statusOf = (answer: string) => Number(answer.split(' ')[1]);
  const bodyOf = (answer: string) => ErrorBodySchema.parse(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).error;

  it('when a client sends its headers too slowly, or its body, then it gets a 408 and the connection is closed', async () => {
    const slowHeaders = await rawExchange('POST /newImage HTTP/1.1\r\nHost: pixelmill\r\n');
    expect(statusOf(slowHeaders.answer)).toBe(408);
    expect(slowHeaders.answer).toMatch(/\r\nConnection: close\r\n/i);
    expect(bodyOf(slowHeaders.answer)).toMatchObject({ code: 'request_timeout', message: expect.stringMatching(/headers/) });
    expect(slowHeaders.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);

    const slowBody = await rawExchange(
      `POST /newImage HTTP/1.1\r\nHost: pixelmill\r\nX-API-Key: ${KEY_B}\r\nContent-Type: image/png\r\nContent-Length: 2000\r\n\r\n` +
        PNG_SIGNATURE.toString('latin1'),
    );
    expect(statusOf(slowBody.answer)).toBe(408);
    expect(bodyOf(slowBody.answer).code).toBe('request_timeout');
    expect(slowBody.ms).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
    expect((await fetch(`${frontend}/healthz`)).status).toBe(200);
  });

  it('when one address opens more connections than allowed, then the ones over the cap get a 429 with Retry-After and are closed', async () => {
    const sockets: net.Socket[] = [];
    const refusals: string[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + 4; i += 1) {
      const socket = net.connect(Number(new URL(frontend).port), '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('close', () => answer !== '' && refusals.push(answer));
      socket.on('error', () => undefined);
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Other connections of this test process may be open too: at least the 4 over the cap are refused.
    expect(refusals.length).toBeGreaterThanOrEqual(4);
    for (const answer of refusals) {
      expect(statusOf(answer)).toBe(429);
      expect(answer).toMatch(/\r\nRetry-After: 1\r\n/i);
      expect(bodyOf(answer).code).toBe('too_many_requests');
    }
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await fetch(`${frontend}/healthz`)).status).toBe(200);
  });

  it('every line every service has logged is one JSON object', () => {
    for (const service of ['kv', 'taskdb', 'storage', 'master', 'frontend']) {
      const text = fs.readFileSync(path.join(dir, 'logs', `${service}.log`), 'utf8');
      for (const line of text.split('\n').filter((l) => l !== '')) {
        expect(() => JSON.parse(line) as unknown).not.toThrow();
      }
    }
  });

  it('when an Idempotency-Key comes again with another image, then it is a 422; with the same image, the first id', async () => {
    const headers = { 'idempotency-key': `abuse-${randomUUID()}` };
    const image = await encode('image/png', makeBitmap(6, 6));
    const first = await accepted(await upload(image, KEY_A, headers));
    expect(await accepted(await upload(image, KEY_A, headers))).toBe(first);
    const other = await upload(await encode('image/png', makeBitmap(7, 7)), KEY_A, headers);
    expect(other.status).toBe(422);
    expect((await errorOf(other)).message).toMatch(/Idempotency-Key/);
    const otherOp = await fetch(`${frontend}/newImage?op=invert`, {
      method: 'POST',
      body: image,
      headers: { 'content-type': 'image/png', accept: 'application/json', 'x-api-key': KEY_A, ...headers },
    });
    expect(otherOp.status).toBe(422);
    const throughContract = await asClientOf(KEY_A).call(frontendContract.newImage, {
      body: await encode('image/png', makeBitmap(8, 8)),
      contentType: 'image/png',
      headers,
    });
    expect(throughContract.status).toBe(422);
  });
});
