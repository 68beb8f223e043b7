import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import winston from 'winston';
import { createServiceApp, rawBodyParser, type Logger } from '../src';
import { serveForEachTest } from './servers';

// A refused body is answered at once and not read on; an error after the answer started is cut
// short and logged once, as one JSON line, never handed on to Express.

const LIMIT = 64 * 1024;
const MiB = 1024 * 1024;

/** A logger whose JSON lines the test reads. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  return { logger, lines };
}

/** Sends an endless chunked body until the answer comes; resolves with it and the bytes the server read. */
function endlessChunkedPost(
  url: string,
  bytesReadOf: () => Promise<number>,
): Promise<{ status: number; connection?: string; read: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
    const chunk = Buffer.alloc(64 * 1024);
    let answered = false;
    const pump = (): void => {
      while (!answered && req.write(chunk));
      if (!answered) req.once('drain', pump);
    };
    req.on('response', (res) => {
      answered = true;
      res.resume();
      res.on('end', () => {
        req.destroy();
        bytesReadOf().then((read) => resolve({ status: res.statusCode!, connection: res.headers.connection, read }), reject);
      });
    });
    req.on('error', () => undefined); // the server closing on a client still sending
    pump();
  });
}

describe('refusals and late errors', () => {
  const serve = serveForEachTest();

  it('when a chunked body passes the limit, then it is answered 413 with Connection: close and not read on', async () => {
    const app = createServiceApp({
      service: 'test',
      logger: capturingLogger().logger,
      routes: (router) => router.post('/upload', rawBodyParser({ limit: LIMIT }), (_req, res) => void res.json({})),
    });
    const server = await serve(app);
    let read = 0;
    const closed = new Promise<number>((resolve) =>
      server.server.once('connection', (socket: Socket) => socket.once('close', () => resolve((read = socket.bytesRead)))),
    );

    const answer = await endlessChunkedPost(server.url, () => closed);

    expect(answer.status).toBe(413);
    expect(answer.connection).toBe('close');
    expect(read).toBeGreaterThan(LIMIT);
    expect(read).toBeLessThan(LIMIT + MiB);
  });

  it.each([
    ['the client hanging up', 'info', true],
    ['a bug', 'error', false],
  ])(
    'when an answer already started fails because of %s, then it is cut short, logged at %s and not handed on',
    async (_why, level, hangUp) => {
      const { logger, lines } = capturingLogger();
      let handedOn = false;
      const app = express();
      app.use(
        createServiceApp({
          service: 'test',
          logger,
          routes: (router) =>
            router.get('/stream', async (_req, res) => {
              res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
              res.write(Buffer.alloc(10));
              if (hangUp) {
                // As a pipeline into the answer fails when the client goes.
                await new Promise((resolve) => res.once('close', resolve));
                throw Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
              }
              throw new Error('the disk caught fire');
            }),
        }),
      );
      // Express's own last handler prints the stack to stderr, outside the JSON log.
      app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => {
        handedOn = true;
        next(err);
      });
      const server = await serve(app);
      const { port } = server.server.address() as AddressInfo;

      const outcome = await new Promise<string>((resolve) => {
        const req = http.get({ port, host: '127.0.0.1', path: '/stream' }, (res) => {
          res.once('data', () => {
            if (hangUp) req.destroy();
          });
          res.on('end', () => resolve('complete'));
          res.on('error', () => resolve('cut short'));
          res.on('aborted', () => resolve('cut short'));
        });
        req.on('error', () => resolve('cut short'));
      });

      expect(outcome).toBe('cut short');
      await new Promise((resolve) => setTimeout(resolve, 100)); // the server's side of the hang-up
      expect(handedOn).toBe(false);
      const logged = lines.filter((line) => String(line.message).startsWith('GET /stream'));
      expect(logged).toHaveLength(1);
      expect(logged[0]!.level).toBe(level);
      expect('stack' in logged[0]!).toBe(level === 'error');
    },
  );
});
