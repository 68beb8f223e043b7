import http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { z } from 'zod';
import { defineRoute, ErrorBodySchema, STREAM } from '@pixelmill/contracts';
import { ContractClient, createServiceApp, mountContract, peekStream, readStreamedBody } from '../src';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();
const TOKEN = 'internal-token-0123456789';
const LIMIT = 64 * 1024;

const Seen = z.object({ length: z.number().nullable(), contentType: z.string().nullable(), limit: z.number(), read: z.boolean() });
const routes = {
  /** Answers at once what it was handed, without reading the body. */
  peek: defineRoute({
    method: 'POST',
    path: '/peek',
    auth: 'internal',
    summary: 'what the handler gets',
    query: z.object({ max: z.coerce.number().optional() }),
    body: STREAM,
    responses: { 200: Seen, 401: ErrorBodySchema, 413: ErrorBodySchema, 415: ErrorBodySchema },
  }),
  /** Reads the body and answers its length and first byte. */
  read: defineRoute({
    method: 'POST',
    path: '/read',
    summary: 'the bytes as they arrived',
    body: STREAM,
    responses: { 200: z.object({ bytes: z.number(), first: z.number() }), 413: ErrorBodySchema },
  }),
};

async function start(): Promise<{ url: string; handled: () => number }> {
  let handled = 0;
  const app = createServiceApp({
    service: 'test',
    logger,
    routes: (router) =>
      mountContract(
        router,
        routes,
        {
          peek: ({ body }, req) => {
            handled += 1;
            const seen = {
              length: body.length ?? null,
              contentType: body.contentType ?? null,
              limit: body.limit,
              read: body.stream !== req || req.readableDidRead,
            };
            return { status: 200, body: seen };
          },
          read: async ({ body }) => {
            handled += 1;
            const bytes = await readStreamedBody(body.stream, body.length, body.limit);
            return { status: 200, body: { bytes: bytes.length, first: bytes[0] ?? -1 } };
          },
        },
        {
          tokens: { internal: TOKEN },
          binaryLimit: LIMIT,
          // A route's limit from its request, as a signed URL's maxBytes lowers storage's.
          streamLimits: { peek: (req) => Math.min(LIMIT, Number(req.query.max ?? LIMIT)) },
        },
      ),
  });
  const server = await serve(app);
  return { url: server.url, handled: () => handled };
}

/** Sends the headers and `sent` bytes of a body that declares `declared`; resolves with the answer, the rest never sent. */
function partialPost(url: string, declared: number, sent: number, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-length': String(declared), 'content-type': 'image/png', ...headers },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.flushHeaders();
    if (sent > 0) req.write(Buffer.alloc(sent, 7));
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('a streamed body (STREAM)', () => {
  it('when a body arrives, then the handler gets it unread, with its declared length, type and limit', async () => {
    const { url } = await start();
    // Half of the body is never sent: a router that read it first would never answer.
    const answer = await partialPost(`${url}/peek`, 1000, 500, auth);
    expect(answer).toEqual({ status: 200, body: { length: 1000, contentType: 'image/png', limit: LIMIT, read: false } });
  });

  it('when a body declares more than the limit, then it is a 413 before any byte is read and the handler never runs', async () => {
    const { url, handled } = await start();
    const answer = await partialPost(`${url}/peek`, LIMIT + 1, 0, auth);
    expect(answer.status).toBe(413);
    expect(ErrorBodySchema.parse(answer.body).error.message).toBe(`request body is larger than the limit of ${LIMIT} bytes`);
    expect(handled()).toBe(0);
  });

  it("when a route's limit comes from the request, then that limit is held and handed on", async () => {
    const { url } = await start();
    expect((await partialPost(`${url}/peek?max=100`, 101, 0, auth)).status).toBe(413);
    expect(await partialPost(`${url}/peek?max=100`, 100, 0, auth)).toMatchObject({ status: 200, body: { limit: 100 } });
  });

  it('when the token is missing, then it is a 401 before the body is read, even one over the limit', async () => {
    const { url, handled } = await start();
    expect((await partialPost(`${url}/peek`, 1000, 0)).status).toBe(401);
    expect((await partialPost(`${url}/peek`, LIMIT * 10, 0)).status).toBe(401);
    expect(handled()).toBe(0);
  });

  it('when a body is compressed, then it is refused with 415', async () => {
    const { url } = await start();
    const answer = await partialPost(`${url}/peek`, 10, 10, { ...auth, 'content-encoding': 'gzip' });
    expect(answer.status).toBe(415);
    expect(ErrorBodySchema.parse(answer.body).error.message).toMatch(/Content-Encoding gzip/);
  });

  it('when a client sends a buffer or a stream (with or without a length), then the handler reads the same bytes', async () => {
    const { url } = await start();
    const client = new ContractClient({ service: 'test', baseUrl: url });
    const bytes = Buffer.alloc(40 * 1024, 9);
    bytes[0] = 1;
    const expected = { status: 200, body: { bytes: bytes.length, first: 1 } };
    expect(await client.call(routes.read, { body: bytes })).toMatchObject(expected);
    expect(await client.call(routes.read, { body: Readable.from([bytes]), contentLength: bytes.length })).toMatchObject(expected);
    expect(await client.call(routes.read, { body: Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]) })).toMatchObject(
      expected,
    );
    // Without a length, the limit is counted as the body arrives.
    expect((await client.call(routes.read, { body: Readable.from([Buffer.alloc(LIMIT), Buffer.alloc(10)]) })).status).toBe(413);
  });
});

describe('peekStream', () => {
  it('when a stream ends within the head, then the head is put back and the stream still ends after it', async () => {
    const stream = new PassThrough();
    stream.write('hello');
    setTimeout(() => stream.end(' world'), 10);
    expect((await peekStream(stream, 1000)).toString()).toBe('hello world');
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello world');
  });
});
