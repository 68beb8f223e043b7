import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { finished, type Readable } from 'node:stream';
import type { z } from 'zod';
import {
  type BinaryBody,
  buildPath,
  ErrorBodySchema,
  isBinary,
  isEmpty,
  type BodyInputOf,
  type ResponseOf,
  type Route,
} from '@pixelmill/contracts';
import { AppError, describeZodError } from './errors';
import { currentRequestId, REQUEST_ID_HEADER } from './request-context';

type Input<S> = S extends z.ZodType ? z.input<S> : never;
/** A binary body goes as one buffer, or as a stream for bytes that should not be held whole. */
type BodyInput<B> = B extends BinaryBody ? Buffer | Readable : BodyInputOf<B>;

/** What a call needs: exactly the parts the route declares. */
export type CallInput<R extends Route> = (R extends { params: infer P } ? { params: Input<P> } : { params?: undefined }) &
  (R extends { query: infer Q } ? { query?: Input<Q> } : { query?: undefined }) &
  (R extends { body: infer B } ? { body: BodyInput<B> } : { body?: undefined }) & {
    /** Content-Type of a binary body. */
    contentType?: string;
    /** Length of a streamed binary body, when known (sent as Content-Length; else it goes chunked). */
    contentLength?: number;
    headers?: Record<string, string>;
    timeoutMs?: number;
    /** Cancels the call (e.g. a long poll at shutdown). */
    signal?: AbortSignal;
    /**
     * Whether the call may be sent again after a lost answer; by default GET, HEAD, DELETE and
     * idempotent POSTs. A streamed body is never sent twice: its bytes are gone once read.
     */
    retry?: boolean;
    /**
     * An absolute URL that stands for base URL, path and query, such as a signed URL handed out
     * for exactly this route; the route still decides the method, body and answers.
     */
    url?: string;
  };

/** A binary answer is read into a Buffer. */
export type CallResult<R extends Route> = ResponseOf<R, Buffer> & { headers: Record<string, string> };

/** A binary success as a stream (its status is one of the route's binary answers), or any other checked answer. */
export type StreamResult<R extends Route> =
  | { status: number; headers: Record<string, string>; stream: Readable }
  | (CallResult<R> & { stream?: undefined });

export interface ContractClientOptions {
  /** The service's name, for error messages. */
  service: string;
  /** Where the service is now: a fixed URL or a resolver (discovery). */
  baseUrl: string | (() => Promise<string>);
  timeoutMs?: number;
  /** Bearer token sent on every call. */
  token?: string;
  /** Called when the service could not be reached, e.g. to forget a cached address. */
  onUnreachable?: () => void;
  /** Extra tries of a call that is safe to repeat, after a connection error or a 502/503/504 (default 2). */
  retries?: number;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 2_000;

/** Capped exponential backoff with jitter: 100, 200, 400 … ms, each between half and all of it. */
export function retryDelayMs(attempt: number): number {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Node's codes for a connection that was never made: the request cannot have reached the server. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A call that could not get an answer: no connection, a reset, a timeout. */
class TransportError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** The stream a body was read from failed or ended early (say, the client uploading it hung up). */
class SourceError extends Error {
  constructor(readonly reason: unknown) {
    super(`the body's source failed: ${(reason as Error)?.message ?? String(reason)}`);
  }
}

const neverConnected = (err: unknown): boolean => err instanceof TransportError && NEVER_CONNECTED.has(err.code ?? '');

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

// Node's own client, not axios: on the services' hot path axios cost about 0.4 ms of CPU per
// call more than this (merging configs, header objects, adapters), a quarter of master's CPU.
const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });

interface Outgoing {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer | string | Readable;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Sends one request and resolves with the response once its head arrived; the body is left to
 * the caller. The timeout covers the whole call until then, and `done()` extends it over the
 * body (call it when the body is read, or when the body is handed on as a stream).
 */
function send(request: Outgoing): Promise<{ response: IncomingMessage; done: () => void }> {
  return new Promise((resolve, reject) => {
    const secure = request.url.protocol === 'https:';
    const headers: Record<string, string | number> = { ...request.headers };
    const streamed = request.body !== undefined && typeof request.body !== 'string' && !Buffer.isBuffer(request.body);
    if (request.body !== undefined && !streamed) headers['content-length'] = Buffer.byteLength(request.body as Buffer | string);
    const req = (secure ? https : http).request(request.url, {
      method: request.method,
      headers,
      agent: secure ? httpsAgent : httpAgent,
    });
    let settled = false;
    const fail = (err: Error & { code?: string }) => {
      cleanup();
      if (settled) return;
      settled = true;
      reject(err instanceof TransportError || err instanceof SourceError ? err : new TransportError(err.message, err.code));
    };
    const timer = setTimeout(() => req.destroy(new TransportError(`no answer within ${request.timeoutMs} ms`, 'ETIMEDOUT')), request.timeoutMs);
    const onAbort = () => req.destroy(new TransportError('cancelled', 'ABORTED'));
    const cleanup = () => {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    };
    if (request.signal?.aborted) {
      onAbort();
    } else {
      request.signal?.addEventListener('abort', onAbort, { once: true });
    }
    req.on('error', fail);
    req.on('response', (response) => {
      response.on('error', fail);
      settled = true;
      resolve({ response, done: cleanup });
    });
    if (streamed) {
      const source = request.body as Readable;
      // An error, or a close before the end (a client that hung up), leaves the request unfinished.
      finished(source, { writable: false }, (err) => {
        if (err) req.destroy(new SourceError(err));
      });
      source.pipe(req);
    } else {
      req.end(request.body);
    }
  });
}

/** The whole body of a response; a single chunk is returned as it is, not copied. */
async function readBody(response: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** A route's query as URL parameters: absent values are left out. */
function appendQuery(url: URL, query: Record<string, unknown> | undefined): void {
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) url.searchParams.append(name, String(value));
  }
}

/**
 * A typed HTTP client over a contract: sends exactly what the route declares and checks the
 * answer against the route's schema for that status, so a drifting service fails loudly.
 * A service that cannot be reached is an AppError 503 (`unavailable`).
 */
export class ContractClient {
  constructor(private readonly options: ContractClientOptions) {}

  get service(): string {
    return this.options.service;
  }

  async call<R extends Route>(route: R, input: CallInput<R>): Promise<CallResult<R>> {
    const answer = await this.exchange(route, input, false);
    return this.parse(route, answer.status, answer.headers, answer.body ?? Buffer.alloc(0));
  }

  /**
   * Like `call`, but a binary success streams: the bytes are not held in memory, for a caller
   * that passes them on. Any other answer is read and checked as `call` does.
   */
  async callStream<R extends Route>(route: R, input: CallInput<R>): Promise<StreamResult<R>> {
    const answer = await this.exchange(route, input, true);
    if (answer.stream) return { status: answer.status, headers: answer.headers, stream: answer.stream };
    return this.parse(route, answer.status, answer.headers, answer.body ?? Buffer.alloc(0));
  }

  /** Sends the call, with retries where safe; a binary success is left as a stream when asked. */
  private async exchange<R extends Route>(
    route: R,
    input: CallInput<R>,
    streamBinary: boolean,
  ): Promise<{ status: number; headers: Record<string, string>; body?: Buffer; stream?: Readable }> {
    const path = buildPath(route.path, (input.params ?? {}) as Record<string, string>);
    const headers: Record<string, string> = { ...input.headers };
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let body: Buffer | string | Readable | undefined;
    if (route.body !== undefined && input.body !== undefined) {
      if (isBinary(route.body)) {
        headers['content-type'] = input.contentType ?? 'application/octet-stream';
        if (input.contentLength !== undefined) headers['content-length'] = String(input.contentLength);
        body = input.body as Buffer | Readable;
      } else {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(input.body);
      }
    }
    const streamedBody = body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
    const repeatable = !streamedBody && (input.retry ?? (route.method !== 'POST' || route.idempotent === true));
    const tries = streamedBody ? 1 : 1 + (this.options.retries ?? 2);

    for (let attempt = 1; ; attempt += 1) {
      try {
        let url: URL;
        if (input.url !== undefined) {
          url = new URL(input.url);
        } else {
          const base = typeof this.options.baseUrl === 'string' ? this.options.baseUrl : await this.options.baseUrl();
          url = new URL(base.replace(/\/+$/, '') + path);
          appendQuery(url, input.query as Record<string, unknown> | undefined);
        }
        const { response, done } = await send({
          method: route.method,
          url,
          headers,
          body,
          timeoutMs: input.timeoutMs ?? this.options.timeoutMs ?? 30_000,
          signal: input.signal,
        });
        const status = response.statusCode ?? 0;
        if (repeatable && RETRY_STATUSES.has(status) && attempt < tries) {
          done();
          response.resume();
        } else {
          const answerHeaders = headersOf(response.headers);
          if (streamBinary && isBinary(route.responses[status])) {
            done();
            return { status, headers: answerHeaders, stream: response };
          }
          try {
            return { status, headers: answerHeaders, body: await readBody(response) };
          } finally {
            done();
          }
        }
      } catch (err) {
        // The body's sender is gone, not the service: no retry, and nothing to report as an outage.
        if (err instanceof SourceError) {
          throw err.reason instanceof AppError
            ? err.reason
            : new AppError('bad_request', 400, 'the upload was cut off before it could be passed on');
        }
        if (input.signal?.aborted) throw new AppError('unavailable', 503, `call to ${this.options.service} was cancelled`);
        if (!(err instanceof AppError)) this.options.onUnreachable?.();
        // A request that never got out (no connection, no address yet) can always be sent again;
        // one that may have arrived only when it is repeatable.
        const again = attempt < tries && (repeatable || neverConnected(err) || err instanceof AppError);
        if (!again) {
          if (err instanceof AppError) throw err;
          const reason = (err as { code?: string }).code ?? (err as Error).message ?? String(err);
          throw new AppError('unavailable', 503, `${this.options.service} is unreachable (${reason})`);
        }
      }
      await sleep(retryDelayMs(attempt), input.signal);
    }
  }

  /** Checks an answer against the route's schema for its status. */
  private parse<R extends Route>(route: R, status: number, headers: Record<string, string>, raw: Buffer): CallResult<R> {
    const spec = route.responses[status];
    if (spec === undefined) {
      throw new AppError(
        'unavailable',
        503,
        `${this.options.service} answered ${route.method} ${route.path} with undocumented status ${status}: ${raw.toString('utf8', 0, 200)}`,
      );
    }
    let body: unknown;
    if (isEmpty(spec) || route.method === 'HEAD') body = undefined;
    else if (isBinary(spec)) body = raw;
    else {
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new AppError('unavailable', 503, `${this.options.service} answered ${status} with a body that is not JSON`);
      }
      const parsed = (spec as z.ZodType).safeParse(json);
      if (!parsed.success) {
        throw new AppError(
          'unavailable',
          503,
          `${this.options.service} answered ${route.method} ${route.path} ${status} outside its contract: ${describeZodError(parsed.error)}`,
        );
      }
      body = parsed.data;
    }
    return { status, body, headers } as CallResult<R>;
  }
}

const headersOf = (headers: object): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));

/**
 * The error for an answer a caller did not want: a downstream client error (4xx with the error
 * body) is passed on as the same AppError; anything else is a 503.
 */
export function downstreamError(result: { status: number; body: unknown }, service: string): AppError {
  const parsed = ErrorBodySchema.safeParse(result.body);
  if (parsed.success && result.status >= 400 && result.status < 500) {
    const { code, message, details } = parsed.data.error;
    return new AppError(code, result.status, message, details);
  }
  return new AppError('unavailable', 503, `${service} answered ${result.status} unexpectedly`);
}

/** Returns the result when it has the wanted status, else throws its `downstreamError`. */
export function expectStatus<R extends Route, S extends number>(
  result: CallResult<R>,
  status: S,
  service = 'a dependency',
): Extract<CallResult<R>, { status: S }> {
  if (result.status === status) return result as Extract<CallResult<R>, { status: S }>;
  throw downstreamError(result, service);
}
