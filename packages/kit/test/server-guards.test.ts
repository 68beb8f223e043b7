import net from 'node:net';
import { performance } from 'node:perf_hooks';
import express from 'express';
import type { Listening } from '../src';
import { serveForEachTest } from './servers';

const serve = serveForEachTest();

/** Room for a loaded machine on top of a configured time; far below Node's own defaults (60 s, 300 s). */
const SLACK_MS = 3_000;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent. */
  raw: string;
  /** From connecting until the server closed the connection. */
  ms: number;
}

function parseAnswer(raw: string, ms: number): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: raw.slice(end + 4), raw, ms };
}

/**
 * Connects to the server, lets `drive` write to the socket (it returns what stops its writing), and
 * collects what the server sends until it closes the connection.
 */
function exchange(server: Listening, drive: (socket: net.Socket) => () => void, localAddress?: string): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ port: server.port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    let stop = () => undefined as void;
    socket.on('connect', () => (stop = drive(socket)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Writes after the server hung up fail; what counts is what it sent before.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stop();
      resolve(parseAnswer(Buffer.concat(chunks).toString('utf8'), performance.now() - started));
    });
  });
}

/** Writes `first`, then `each` every `everyMs`, until stopped. */
const dribble = (first: string, each: string, everyMs: number) => (socket: net.Socket) => {
  socket.write(first);
  const timer = setInterval(() => socket.write(each), everyMs);
  return () => clearInterval(timer);
};

/** An open keep-alive connection that has been served one request. */
function servedConnection(server: Listening, localAddress?: string): Promise<{ socket: net.Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: server.port, host: '127.0.0.1', localAddress });
    let answer = '';
    socket.on('connect', () => socket.write('GET /hello HTTP/1.1\r\nHost: test\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('utf8');
      if (answer.endsWith('hello')) resolve({ socket, answer });
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ socket, answer }));
  });
}

/** Counts the requests Express saw. */
function testApp() {
  let seen = 0;
  const app = express();
  app.use((_req, _res, next) => {
    seen += 1;
    next();
  });
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('hello');
  });
  app.post('/upload', (req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.json({ length }));
  });
  // The answer starts before the body has arrived, as a streamed answer's would.
  app.post('/answer-early', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('started');
    req.resume();
    req.on('end', () => res.end('done'));
  });
  app.get('/think', (_req, res) => {
    setTimeout(() => res.json({ thought: true }), 1_200);
  });
  return { app, seen: () => seen };
}

describe('listen: slow clients', () => {
  it('when the headers arrive slower than the headers timeout, then the client gets a JSON 408 and the connection is closed', async () => {
    const server = await serve(testApp().app, { headersTimeoutMs: 300, bodyTimeoutMs: 5_000 });

    const answer = await exchange(server, dribble('GET /hello HTTP/1.1\r\n', 'X-Slow: yes\r\n', 50));

    expect(answer.status).toBe(408);
    expect(answer.headers).toMatchObject({ connection: 'close', 'content-type': 'application/json; charset=utf-8' });
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'request_timeout', message: 'the request headers were not received within 300 ms' },
    });
    expect(answer.ms).toBeGreaterThanOrEqual(290);
    expect(answer.ms).toBeLessThan(300 + SLACK_MS);
  });

  it('when a connection sends nothing at all, then it is answered 408 after the headers timeout too', async () => {
    const server = await serve(testApp().app, { headersTimeoutMs: 300, bodyTimeoutMs: 5_000 });

    const answer = await exchange(server, () => () => undefined);

    expect(answer.status).toBe(408);
    expect(answer.ms).toBeLessThan(300 + SLACK_MS);
  });

  it('when the body arrives slower than the request timeout, then the client gets a JSON 408 naming it and the connection is closed', async () => {
    const server = await serve(testApp().app, { headersTimeoutMs: 300, bodyTimeoutMs: 800 });

    const answer = await exchange(server, dribble('POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n', 'x', 50));

    expect(answer.status).toBe(408);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'request_timeout', message: 'the request was not received within 800 ms' },
    });
    expect(answer.ms).toBeGreaterThanOrEqual(790);
    expect(answer.ms).toBeLessThan(800 + SLACK_MS);
  });

  it('when the answer had started before the request timed out, then the connection is only closed, with no 408 inside the answer', async () => {
    const server = await serve(testApp().app, { headersTimeoutMs: 300, bodyTimeoutMs: 800 });

    const answer = await exchange(server, dribble('POST /answer-early HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n', 'x', 50));

    expect(answer.status).toBe(200);
    expect(answer.raw).toContain('started');
    expect(answer.raw).not.toMatch(/408|request_timeout|HTTP\/1\.1 4/);
    expect(answer.ms).toBeLessThan(800 + SLACK_MS);
  });

  it('when a received request takes its handler longer than the request timeout, then it is still answered', async () => {
    const server = await serve(testApp().app, { headersTimeoutMs: 300, bodyTimeoutMs: 800 });

    const response = await fetch(`${server.url}/think`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ thought: true });
  });
});

describe('listen: connections per client address', () => {
  it('when a client opens one connection more than the cap, then that one gets a raw 429 and is closed, without Express', async () => {
    const { app, seen } = testApp();
    const server = await serve(app, { maxConnectionsPerClient: 2 });
    const open = [await servedConnection(server), await servedConnection(server)];
    expect(open.map((c) => c.answer)).toEqual([expect.stringMatching(/^HTTP\/1\.1 200/), expect.stringMatching(/^HTTP\/1\.1 200/)]);

    const refused = await exchange(server, (socket) => {
      socket.write('GET /hello HTTP/1.1\r\nHost: test\r\n\r\n');
      return () => undefined;
    });

    expect(refused.status).toBe(429);
    expect(refused.headers).toMatchObject({ 'retry-after': '1', connection: 'close' });
    expect(JSON.parse(refused.body)).toEqual({
      error: { code: 'too_many_requests', message: 'too many connections from your address: at most 2 may be open at once' },
    });
    expect(seen()).toBe(2);
    for (const { socket } of open) socket.destroy();
  });

  it('when a capped client closes a connection, then its next one is served', async () => {
    const server = await serve(testApp().app, { maxConnectionsPerClient: 1 });
    const first = await servedConnection(server);
    expect((await servedConnection(server)).answer).toMatch(/^HTTP\/1\.1 429/);

    await new Promise((closed) => first.socket.once('close', closed).destroy());
    // The server learns of the close a moment after the client does.
    let next = await servedConnection(server);
    for (let tries = 0; next.answer.startsWith('HTTP/1.1 429') && tries < 20; tries += 1) {
      await new Promise((r) => setTimeout(r, 50));
      next = await servedConnection(server);
    }

    expect(next.answer).toMatch(/^HTTP\/1\.1 200/);
    next.socket.destroy();
  });

  it('when one address is at the cap, then another address is still served', async () => {
    const server = await serve(testApp().app, { maxConnectionsPerClient: 1 });
    const first = await servedConnection(server, '127.0.0.1');
    expect((await servedConnection(server, '127.0.0.1')).answer).toMatch(/^HTTP\/1\.1 429/);

    const other = await servedConnection(server, '127.0.0.2');

    expect(other.answer).toMatch(/^HTTP\/1\.1 200/);
    first.socket.destroy();
    other.socket.destroy();
  });
});
