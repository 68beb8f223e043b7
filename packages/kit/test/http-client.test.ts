import http from 'node:http';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { z } from 'zod';
import { BINARY, defineRoute, EMPTY, ErrorBodySchema } from '@pixelmill/contracts';
import { AppError, ContractClient, createServiceApp, mountContract, rawBodyParser } from '../src';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();

const EchoSchema = z.object({ query: z.record(z.string(), z.string()), count: z.number() });
const echo = defineRoute({
  method: 'GET',
  path: '/echo',
  summary: 'what the server saw',
  query: z.object({ a: z.string().optional(), n: z.coerce.number().optional(), flag: z.string().optional() }),
  responses: { 200: EchoSchema, 503: ErrorBodySchema },
});
const submit = defineRoute({
  method: 'POST',
  path: '/submit',
  summary: 'not safe to repeat',
  body: z.object({ value: z.number() }),
  responses: { 200: EchoSchema, 503: ErrorBodySchema },
});
const upload = defineRoute({
  method: 'POST',
  path: '/upload',
  summary: 'raw bytes in, their length back',
  body: BINARY,
  responses: { 200: z.object({ length: z.number(), first: z.number() }), 413: ErrorBodySchema },
});
const slow = defineRoute({ method: 'GET', path: '/slow', summary: 'never answers in time', responses: { 204: EMPTY } });
const storeBytes = defineRoute({
  method: 'POST',
  path: '/store',
  summary: 'raw bytes, safe to repeat',
  idempotent: true,
  body: BINARY,
  responses: { 200: EchoSchema, 503: ErrorBodySchema },
});
const routes = { echo, submit, upload, slow, storeBytes };

/** A server over the routes above that fails the first `failFirst` calls of echo and submit with 503. */
async function startServer(failFirst = 0) {
  let count = 0;
  const server = await serve(
    createServiceApp({
      service: 'echo',
      logger,
      routes: (router) =>
        mountContract(
          router,
          routes,
          {
            echo: (_input, req) => {
              count += 1;
              if (count <= failFirst) throw new AppError('unavailable', 503, 'not yet');
              return { status: 200, body: { query: req.query as Record<string, string>, count } };
            },
            submit: () => {
              count += 1;
              if (count <= failFirst) throw new AppError('unavailable', 503, 'not yet');
              return { status: 200, body: { query: {}, count } };
            },
            upload: ({ body }) => ({ status: 200, body: { length: body.length, first: body[0] ?? -1 } }),
            storeBytes: () => {
              count += 1;
              if (count <= failFirst) throw new AppError('unavailable', 503, 'not yet');
              return { status: 200, body: { query: {}, count } };
            },
            slow: () => new Promise(() => undefined),
          },
          { binaryLimit: 1024 },
        ),
    }),
  );
  return { server, calls: () => count };
}

describe('ContractClient over axios', () => {
  it('when a query has absent values, then only the given ones are sent', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const result = await client.call(echo, { query: { a: 'x y&z', n: 5, flag: undefined } });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ query: { a: 'x y&z', n: '5' }, count: 1 });
  });

  it('when a repeatable call meets a 503, then it is sent again and the later answer counts', async () => {
    const { server, calls } = await startServer(2);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url, retries: 2 });
    const result = await client.call(echo, {});
    expect(result).toMatchObject({ status: 200, body: { count: 3 } });
    expect(calls()).toBe(3);
  });

  it('when a call that is not safe to repeat meets a 503, then it is sent once and the 503 is the answer', async () => {
    const { server, calls } = await startServer(1);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url, retries: 2 });
    const result = await client.call(submit, { body: { value: 1 } });
    expect(result.status).toBe(503);
    expect(calls()).toBe(1);
  });

  it('when the server does not answer in time, then the call is a 503 naming the timeout', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url, retries: 0 });
    const started = Date.now();
    const error = await client.call(slow, { timeoutMs: 200 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(503);
    expect((error as AppError).message).toMatch(/echo is unreachable \(ETIMEDOUT\)/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('when the caller aborts, then the call ends at once as cancelled', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const abort = new AbortController();
    const pending = client.call(slow, { signal: abort.signal, timeoutMs: 60_000 }).catch((err: unknown) => err);
    setTimeout(() => abort.abort(), 50);
    const error = await pending;
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).message).toMatch(/cancelled/);
  });

  it('when a binary body is a stream, then it arrives whole, with its length or chunked, and is never sent twice', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const parts = () => Readable.from([Buffer.alloc(100, 5), Buffer.alloc(300, 6)]);
    const withLength = await client.call(upload, { body: parts(), contentLength: 400, contentType: 'image/png' });
    expect(withLength.body).toEqual({ length: 400, first: 5 });
    const chunked = await client.call(upload, { body: parts(), contentType: 'image/png' });
    expect(chunked.body).toEqual({ length: 400, first: 5 });

    // The same idempotent route meeting a 503: a buffer is sent again, a stream is not.
    const buffered = await startServer(1);
    const bufferedClient = new ContractClient({ service: 'echo', baseUrl: buffered.server.url, retries: 2 });
    expect((await bufferedClient.call(storeBytes, { body: Buffer.alloc(10) })).status).toBe(200);
    expect(buffered.calls()).toBe(2);
    const streamed = await startServer(1);
    const streamClient = new ContractClient({ service: 'echo', baseUrl: streamed.server.url, retries: 2 });
    const result = await streamClient.call(storeBytes, { body: parts() });
    expect(streamed.calls()).toBe(1);
    expect(result.status).toBe(503);
  });

  it('when the client of a streamed upload hangs up halfway, then the call is a 400 saying the upload was cut off, not an outage', async () => {
    const { server } = await startServer();
    let unreachable = 0;
    const client = new ContractClient({ service: 'echo', baseUrl: server.url, onUnreachable: () => (unreachable += 1) });
    // A relay that passes its request body on as it arrives, as the frontend does with a large upload.
    let relayed: (error: unknown) => void;
    const outcome = new Promise<unknown>((resolve) => (relayed = resolve));
    const relayApp = express();
    relayApp.post('/relay', (req) => {
      client.call(upload, { body: req, contentLength: 1_000, contentType: 'image/png' }).then(relayed, relayed);
    });
    const relay = await serve(relayApp);

    const uploader = net.connect(relay.port, '127.0.0.1', () => {
      uploader.write('POST /relay HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n');
      uploader.write(Buffer.alloc(300, 1));
      setTimeout(() => uploader.destroy(), 100);
    });
    const error = await outcome;

    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'bad_request', status: 400, message: 'the upload was cut off before it could be passed on' });
    expect(unreachable).toBe(0);
  });

  it('when a streamed body ends early without an error, then the call fails at once as cut off rather than waiting for its timeout', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const source = new PassThrough();
    source.write(Buffer.alloc(100, 2));
    setTimeout(() => source.destroy(), 50);

    const started = Date.now();
    const error = await client.call(upload, { body: source, contentLength: 400, timeoutMs: 10_000 }).catch((err: unknown) => err);

    expect(error).toMatchObject({ code: 'bad_request', status: 400 });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("when a streamed body fails with an AppError (a limit passed while it streams), then that error is the call's", async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const source = new PassThrough();
    const tooLarge = new AppError('payload_too_large', 413, 'the image is larger than the upload limit');
    source.write(Buffer.alloc(100, 2));
    setTimeout(() => source.destroy(tooLarge), 50);

    const error = await client.call(upload, { body: source, contentLength: 400 }).catch((err: unknown) => err);

    expect(error).toBe(tooLarge);
  });

  it('when bodies are larger than 10 MB, then they go up, as a buffer or a stream, and come down whole', async () => {
    const BIG = 12 * 1024 * 1024;
    const bytes = Buffer.alloc(BIG, 7);
    const bigUpload = defineRoute({ ...upload, path: '/big' });
    const bigDownload = defineRoute({ method: 'GET', path: '/big', summary: 'many bytes', responses: { 200: BINARY } });
    const server = await serve(
      createServiceApp({
        service: 'big',
        logger,
        routes: (router) =>
          mountContract(
            router,
            { bigUpload, bigDownload },
            {
              bigUpload: ({ body }) => ({ status: 200, body: { length: body.length, first: body[0] ?? -1 } }),
              bigDownload: () => ({ status: 200, body: bytes }),
            },
            { binaryLimit: 2 * BIG },
          ),
      }),
    );
    const client = new ContractClient({ service: 'big', baseUrl: server.url });

    const fromBuffer = await client.call(bigUpload, { body: bytes, contentType: 'image/png' });
    const fromStream = await client.call(bigUpload, {
      body: Readable.from([bytes.subarray(0, BIG / 2), bytes.subarray(BIG / 2)]),
      contentType: 'image/png',
    });
    const whole = await client.call(bigDownload, {});
    const streamed = await client.callStream(bigDownload, {});

    expect(fromBuffer.body).toEqual({ length: BIG, first: 7 });
    expect(fromStream.body).toEqual({ length: BIG, first: 7 });
    expect(whole.status === 200 && whole.body.equals(bytes)).toBe(true);
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.stream!) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('when a server answers with a redirect, then it is not followed: the redirect is the answer, outside the contract', async () => {
    let followed = 0;
    const app = express();
    app.get('/echo', (_req, res) => res.redirect(302, '/elsewhere'));
    app.get('/elsewhere', (_req, res) => {
      followed += 1;
      res.json({ query: {}, count: 0 });
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });

    const error = await client.call(echo, {}).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).message).toMatch(/undocumented status 302/);
    expect(followed).toBe(0);
  });

  it('when calls follow one another, then they share one kept-alive connection', async () => {
    const ports = new Set<number>();
    const app = express();
    app.get('/echo', (req, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.json({ query: {}, count: ports.size });
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });

    for (let i = 0; i < 3; i++) expect((await client.call(echo, {})).status).toBe(200);

    expect(ports.size).toBe(1);
  });

  it('when the service cannot be connected to, then even a call not safe to repeat is sent again, to the address resolved anew', async () => {
    const { server, calls } = await startServer();
    const targets = ['http://127.0.0.1:9', server.url];
    let resolved = 0;
    const unreachable: Array<string | undefined> = [];
    const client = new ContractClient({
      service: 'echo',
      baseUrl: async () => targets[Math.min(resolved++, targets.length - 1)]!,
      onUnreachable: (url) => unreachable.push(url),
    });

    const result = await client.call(submit, { body: { value: 1 } });

    expect(result.status).toBe(200);
    expect(calls()).toBe(1);
    expect(resolved).toBe(2);
    // The address that failed, for discovery to skip.
    expect(unreachable).toEqual(['http://127.0.0.1:9']);
  });

  it('when the service hangs up on a call not safe to repeat, then it is not sent again and the call is a 503 naming the reset', async () => {
    let received = 0;
    const app = express();
    app.post('/submit', (req) => {
      received += 1;
      req.socket.destroy();
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url, retries: 2 });

    const error = await client.call(submit, { body: { value: 1 } }).catch((err: unknown) => err);

    expect(error).toMatchObject({ code: 'unavailable', status: 503, message: 'echo is unreachable (ECONNRESET)' });
    expect(received).toBe(1);
  });

  it('when a POST has no body, then it goes without a Content-Type (axios would call it a form)', async () => {
    const ping = defineRoute({
      method: 'POST',
      path: '/ping',
      summary: 'no body',
      responses: { 200: z.object({ contentType: z.string() }) },
    });
    const app = express();
    app.post('/ping', (req, res) => res.json({ contentType: req.get('content-type') ?? 'none' }));
    const server = await serve(app);
    const client = new ContractClient({ service: 'ping', baseUrl: server.url });

    const result = await client.call(ping, {});

    expect(result.body).toEqual({ contentType: 'none' });
  });

  it('when an answer comes compressed although identity was asked for, then it is unpacked before it is checked', async () => {
    const app = express();
    app.get('/echo', (req, res) => {
      res.set({ 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ query: { asked: req.get('accept-encoding') ?? 'none' }, count: 1 })));
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });

    const result = await client.call(echo, {});

    expect(result.body).toEqual({ query: { asked: 'identity' }, count: 1 });
    expect(result.headers['content-encoding']).toBeUndefined();
  });

  it('when the base URL has a path, then calls go under it, with their query', async () => {
    let seen = '';
    const app = express();
    app.get('/v1/echo', (req, res) => {
      seen = req.originalUrl;
      res.json({ query: req.query, count: 1 });
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: `${server.url}/v1/` });

    const result = await client.call(echo, { query: { a: 'x y' } });

    expect(result.status).toBe(200);
    expect(seen).toBe('/v1/echo?a=x+y');
  });

  it('when the caller aborts while the answer is still arriving, then the call ends at once as cancelled', async () => {
    const app = express();
    app.get('/echo', (_req, res) => {
      res.set({ 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"query":');
    });
    const server = await serve(app);
    const client = new ContractClient({ service: 'echo', baseUrl: server.url });
    const abort = new AbortController();
    const pending = client.call(echo, { signal: abort.signal, timeoutMs: 60_000 }).catch((err: unknown) => err);
    setTimeout(() => abort.abort(), 100);

    const error = await pending;

    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).message).toMatch(/cancelled|unreachable/);
  });

  it('when an absolute url is given, then it is called instead of the base URL', async () => {
    const { server } = await startServer();
    const client = new ContractClient({ service: 'echo', baseUrl: 'http://127.0.0.1:9' });
    const result = await client.call(echo, { url: `${server.url}/echo?a=signed` });
    expect(result.body).toMatchObject({ query: { a: 'signed' } });
  });
});

/** Sends a raw body by hand: chunked (no Content-Length) when `chunked` is set. */
function post(url: string, chunks: Buffer[], chunked: boolean): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const length = chunks.reduce((sum, c) => sum + c.length, 0);
    const req = http.request(
      url,
      { method: 'POST', headers: chunked ? { 'content-type': 'image/png' } : { 'content-type': 'image/png', 'content-length': length } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('rawBodyParser', () => {
  it('when a body declares its length, then it arrives whole, in one buffer', async () => {
    const { server } = await startServer();
    const answer = await post(`${server.url}/upload`, [Buffer.alloc(300, 7), Buffer.alloc(700, 8)], false);
    expect(answer).toEqual({ status: 200, body: { length: 1000, first: 7 } });
  });

  it('when a chunked body comes without a length, then it arrives whole too', async () => {
    const { server } = await startServer();
    const answer = await post(`${server.url}/upload`, [Buffer.alloc(10, 3), Buffer.alloc(20, 4)], true);
    expect(answer).toEqual({ status: 200, body: { length: 30, first: 3 } });
  });

  it('when a body is larger than the limit, declared or chunked, then it is a 413 naming the limit', async () => {
    const { server } = await startServer();
    for (const chunked of [false, true]) {
      const answer = await post(`${server.url}/upload`, [Buffer.alloc(800), Buffer.alloc(800)], chunked);
      expect(answer).toEqual({
        status: 413,
        body: { error: { code: 'payload_too_large', message: 'request body is larger than the limit of 1024 bytes' } },
      });
    }
  });

  it('when a chunked body passes the limit while it still arrives, then the client still gets its 413', async () => {
    const { server } = await startServer();
    const answer = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const req = http.request(`${server.url}/upload`, { method: 'POST', headers: { 'content-type': 'image/png' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
      });
      req.on('error', reject);
      // Over the limit with the third part; the rest follows later, as a slow upload's would.
      let sent = 0;
      const sendNext = () => {
        req.write(Buffer.alloc(400, 1));
        sent += 1;
        if (sent < 6) setTimeout(sendNext, 20);
        else req.end();
      };
      sendNext();
    });
    expect(answer).toEqual({
      status: 413,
      body: { error: { code: 'payload_too_large', message: 'request body is larger than the limit of 1024 bytes' } },
    });
  });

  it('when a request has no body, then req.body is an empty buffer', async () => {
    const app = express();
    let seen: unknown;
    app.post('/', rawBodyParser({ limit: 10 }), (req, res) => {
      seen = req.body;
      res.json({});
    });
    const server = await serve(app);
    const response = await fetch(`${server.url}/`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(Buffer.isBuffer(seen) && seen.length === 0).toBe(true);
  });
});
