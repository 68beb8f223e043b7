import http, { type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import express, { type Express, type Request, type RequestHandler, type Response, type Router } from 'express';
import {
  commonContract,
  createOpenApiDocument,
  SERVICE_NAMES,
  serviceOpenApiDocument,
  type ErrorCode,
  type ReadyCheckState,
  type ServiceName,
} from '@pixelmill/contracts';
import type { ServiceTokens } from './auth';
import { mountContract } from './contract-router';
import { AppError, errorHandler, notFoundHandler } from './errors';
import type { Logger } from './logger';
import { HttpMetrics, metricsSource, type Registry } from './metrics';
import { requestContext } from './request-context';

/** Longest request URL served; longer ones get a 414. */
export const MAX_URL_LENGTH = 8 * 1024;

/** Time a client has for a request's headers, from its connection or the request's first byte. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
/**
 * Time a client has for a whole request, headers and body. 25 MiB (the default upload limit) in
 * two minutes needs about 1.75 Mbit/s upstream, what a slow mobile or ADSL line still gives; a
 * stack taking larger uploads or slower clients raises it.
 */
export const DEFAULT_BODY_TIMEOUT_MS = 120_000;
/** Node checks its request timeouts every 30 s by default; this close, a timeout is kept within 10 %. */
const TIMEOUT_CHECKS_PER_PERIOD = 10;
const MIN_TIMEOUT_CHECK_MS = 10;

/**
 * An answer written straight to the socket, for what never reaches Express; the socket is
 * closed once it is sent. Closing at once instead (as Node does with its own refusals) resets
 * the connection under a client still sending, which then sees the reset and not the answer.
 */
function refuse(socket: Duplex, status: number, reason: string, code: ErrorCode, message: string, headers = ''): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** The response in flight on a socket, which Node keeps there until it is finished. */
const responseOn = (socket: Duplex): ServerResponse | null | undefined =>
  (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;

/**
 * Answers what Node's HTTP parser refuses before Express sees it, and a request not received in
 * time, with the same JSON error body. Once a response has started on the socket, an answer
 * would corrupt it: the socket is only closed.
 */
function answerClientError(timeouts: { headersMs: number; bodyMs: number }) {
  return (err: Error & { code?: string }, socket: Duplex): void => {
    const response = responseOn(socket);
    if (!socket.writable || response?.headersSent) {
      socket.destroy();
      return;
    }
    switch (err.code) {
      case 'HPE_HEADER_OVERFLOW':
        refuse(socket, 431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers (or URL) are too large');
        return;
      case 'ERR_HTTP_REQUEST_TIMEOUT':
        // A response object exists once the headers are in: then it was the body that was late.
        refuse(
          socket,
          408,
          'Request Timeout',
          'request_timeout',
          response
            ? `the request was not received within ${timeouts.bodyMs} ms`
            : `the request headers were not received within ${timeouts.headersMs} ms`,
        );
        return;
      default:
        refuse(socket, 400, 'Bad Request', 'bad_request', 'malformed HTTP request');
    }
  };
}

/**
 * Caps the connections one client address holds open at once: one more is answered a raw 429
 * as it connects, before Node's HTTP layer takes the socket, and closed once that is sent.
 * Returns whether a socket was refused, so a request that arrives on it meanwhile skips Express.
 */
function capConnectionsPerClient(server: Server, max: number): (socket: Duplex) => boolean {
  const open = new Map<string, number>();
  const refused = new WeakSet<Duplex>();
  server.prependListener('connection', (socket: Socket) => {
    const client = socket.remoteAddress;
    if (client === undefined) return; // gone already
    const count = open.get(client) ?? 0;
    if (count >= max) {
      refused.add(socket);
      refuse(
        socket,
        429,
        'Too Many Requests',
        'too_many_requests',
        `too many connections from your address: at most ${max} may be open at once`,
        'Retry-After: 1\r\n',
      );
      return;
    }
    open.set(client, count + 1);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left === 0) open.delete(client);
      else open.set(client, left);
    });
  });
  return (socket) => refused.has(socket);
}

const refuseLongUrl = (req: Request): AppError | undefined =>
  req.originalUrl.length > MAX_URL_LENGTH
    ? new AppError('uri_too_long', 414, `the URL is longer than ${MAX_URL_LENGTH} characters`)
    : undefined;

/**
 * One dependency's check for `/readyz`: it resolves when the dependency is fine (`ok`), or with the
 * state it found instead (`unauthorized`); it throws when the dependency fails.
 */
export type ReadinessCheck = () => Promise<ReadyCheckState | void>;

export interface ServiceAppOptions {
  service: string;
  logger: Logger;
  /** Mounts the service's own routes. */
  routes: (router: Router) => void;
  /** Dependencies `/readyz` checks; each must be `ok` for the service to be ready. */
  readiness?: Record<string, ReadinessCheck>;
  /**
   * The tokens the service's routes ask for: `GET /authz` and `GET /metrics` answer a caller
   * holding the internal one, and 401 to others; unset, they are open like the routes.
   */
  tokens?: ServiceTokens;
  /** Run first on every request, kit's own answers and errors included (e.g. security headers). */
  firstMiddleware?: RequestHandler[];
  /** The service's own metrics, served at `/metrics` after kit's (HTTP requests, the process). */
  metrics?: Registry;
}

const isServiceName = (name: string): name is ServiceName => (SERVICE_NAMES as readonly string[]).includes(name);

/**
 * The service's OpenAPI document as JSON text, generated from the contracts once, on first use.
 * A service pixelmill does not know (a test's) documents the common routes only.
 */
function openApiText(service: string): () => string {
  let text: string | undefined;
  return () => {
    if (text === undefined) {
      const packageFile = require.resolve('@pixelmill/contracts/package.json');
      const { version } = JSON.parse(readFileSync(packageFile, 'utf8')) as { version: string };
      const document = isServiceName(service)
        ? serviceOpenApiDocument(service, version)
        : createOpenApiDocument({ service, contract: {}, version });
      text = JSON.stringify(document);
    }
    return text;
  };
}

/** Answered on every turn of other services' readiness probes and of Prometheus's scrapes: not worth an access log line each. */
const PROBE_PATHS: ReadonlySet<string> = new Set([
  commonContract.health.path,
  commonContract.ready.path,
  commonContract.authz.path,
  commonContract.metrics.path,
]);

/**
 * The Express app every service shares: request metrics and ids, access log, `/healthz`,
 * `/readyz`, `/authz`, `/openapi.json`, `/metrics`, the service's routes, then JSON 404s and the
 * error handler. Never listens.
 */
export function createServiceApp(options: ServiceAppOptions): Express {
  const { service, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  // Answers are small JSON or images streamed from disk: hashing each for an ETag is CPU for nothing.
  app.set('etag', false);
  app.set('query parser', 'simple');
  const http = new HttpMetrics();
  // The access log costs only when its level is on (a filtered line still runs winston's stream).
  const logRequests = logger.isLevelEnabled('http');
  // First, so every request is counted, those refused by kit included: one clock read and one
  // listener each, shared by the metrics and the access log.
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      http.record(req, res.statusCode, ms / 1000);
      if (logRequests && !PROBE_PATHS.has(req.path)) {
        logger.http(`${req.method} ${req.path} ${res.statusCode}`, { status: res.statusCode, ms: Math.round(ms * 10) / 10 });
      }
    });
    next();
  });
  if (options.firstMiddleware?.length) app.use(options.firstMiddleware);
  // One middleware for what every request goes through first: each one more costs a turn of the router.
  app.use(requestContext(refuseLongUrl));

  const router = express.Router();
  const openApi = openApiText(service);
  const metrics = metricsSource(http.registry, ...(options.metrics ? [options.metrics] : []));
  mountContract(
    router,
    commonContract,
    {
      openapi: (_input, _req, res) => {
        res.status(200).type('application/json').send(openApi());
      },
      // Written as is: Express would rewrite the content type's parameters (Prometheus reads its version).
      metrics: async (_input, _req, res) => {
        const { contentType, text } = await metrics();
        res.status(200).setHeader('content-type', contentType);
        res.end(text);
      },
      health: () => ({ status: 200, body: { status: 'ok', service } }),
      ready: async () => {
        const entries = await Promise.all(
          Object.entries(options.readiness ?? {}).map(async ([name, check]): Promise<[string, ReadyCheckState]> => {
            try {
              return [name, (await check()) ?? 'ok'];
            } catch {
              return [name, 'failing'];
            }
          }),
        );
        const checks = Object.fromEntries(entries);
        const ready = entries.every(([, state]) => state === 'ok');
        return ready
          ? { status: 200, body: { status: 'ready', service, checks } }
          : { status: 503, body: { status: 'not_ready', service, checks } };
      },
      // The router has checked the token by the time this runs.
      authz: () => ({ status: 204, body: undefined }),
    },
    { tokens: options.tokens },
  );
  options.routes(router);
  app.use(router);
  app.use(notFoundHandler());
  app.use(errorHandler(logger));
  return app;
}

/** Aborted when the client hangs up before its answer was sent: a long poll for it can stop. */
export function hangUpSignal(res: Response): AbortSignal {
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}

export interface Listening {
  server: Server;
  port: number;
  /** http://host:port as bound. */
  url: string;
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Time a client has to send a request's headers, from the connection or the request's first byte. */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, headers and body; a handler's own time is not counted. */
  bodyTimeoutMs?: number;
  /** Connections one client address may hold open at once; more are refused with 429. 0 or unset: no cap. */
  maxConnectionsPerClient?: number;
}

/**
 * Listens on host:port (0 picks a free port) and resolves once bound. A request not received
 * within its timeouts is answered 408 and its connection closed.
 */
export function listen(app: Express, port: number, options: ListenOptions = {}): Promise<Listening> {
  const host = options.host ?? '127.0.0.1';
  const bodyMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  // The whole request's limit bounds its headers too; Node refuses a headers timeout above it.
  const headersMs = Math.min(options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, bodyMs);
  return new Promise((resolve, reject) => {
    const server = http.createServer({
      headersTimeout: headersMs,
      requestTimeout: bodyMs,
      connectionsCheckingInterval: Math.max(MIN_TIMEOUT_CHECK_MS, Math.floor(headersMs / TIMEOUT_CHECKS_PER_PERIOD)),
    });
    const max = options.maxConnectionsPerClient ?? 0;
    const refused = max > 0 ? capConnectionsPerClient(server, max) : () => false;
    server.on('request', (req, res) => {
      if (!refused(req.socket)) app(req, res);
    });
    // Longer than the clients' idle sockets live, so a reused keep-alive socket is not closed under a request.
    server.keepAliveTimeout = 65_000;
    server.on('clientError', answerClientError({ headersMs, bodyMs }));
    server.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      resolve({
        server,
        port: address.port,
        url: `http://${shownHost}:${address.port}`,
        // Stops taking connections, lets requests in flight finish, and closes each keep-alive
        // connection as soon as it is idle (not only those idle at the moment of closing).
        close: () =>
          new Promise<void>((done, fail) => {
            const sweep = setInterval(() => server.closeIdleConnections(), 50);
            server.close((err) => {
              clearInterval(sweep);
              if (err) fail(err);
              else done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}

/**
 * On SIGTERM or SIGINT: run the stop steps in order (stop taking work, close the server,
 * release resources), then exit. A forced exit after `timeoutMs` is the backstop.
 */
export function onShutdown(logger: Logger, timeoutMs: number, steps: Array<() => unknown>): void {
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received, shutting down`);
    const force = setTimeout(() => {
      logger.error(`shutdown took longer than ${timeoutMs} ms, exiting`);
      process.exit(1);
    }, timeoutMs);
    force.unref();
    let code = 0;
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        code = 1;
        logger.error('shutdown step failed', err);
      }
    }
    logger.info('stopped');
    process.exit(code);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
