import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import type { z } from 'zod';
import {
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

/** What a call needs: exactly the parts the route declares. */
export type CallInput<R extends Route> = (R extends { params: infer P } ? { params: Input<P> } : { params?: undefined }) &
  (R extends { query: infer Q } ? { query?: Input<Q> } : { query?: undefined }) &
  (R extends { body: infer B } ? { body: BodyInputOf<B> } : { body?: undefined }) & {
    /** Content-Type of a binary body. */
    contentType?: string;
    headers?: Record<string, string>;
    timeoutMs?: number;
    /** Cancels the call (e.g. a long poll at shutdown). */
    signal?: AbortSignal;
    /** Whether the call may be sent again after a lost answer; by default GET, HEAD, DELETE and idempotent POSTs. */
    retry?: boolean;
    /**
     * An absolute URL that stands for base URL, path and query, such as a signed URL handed out
     * for exactly this route; the route still decides the method, body and answers.
     */
    url?: string;
  };

export type CallResult<R extends Route> = ResponseOf<R> & { headers: Record<string, string> };

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

/** A connection that was never made: the request cannot have reached the server. */
const neverConnected = (err: unknown): boolean =>
  err instanceof AxiosError && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(err.code ?? '');

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });
const sharedAxios: AxiosInstance = axios.create({
  httpAgent,
  httpsAgent,
  maxRedirects: 0,
  maxBodyLength: Infinity,
  maxContentLength: Infinity,
  responseType: 'arraybuffer',
  // Every status is an answer to check against the contract, not an exception.
  validateStatus: () => true,
  transformResponse: [(data: unknown) => data],
});

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
    const response = await this.send(route, input, 'arraybuffer');
    // axios gives a Buffer already in Node: copying a large image again would double its memory.
    const raw = Buffer.isBuffer(response.data) ? response.data : Buffer.from(new Uint8Array((response.data as ArrayBuffer | undefined) ?? new ArrayBuffer(0)));
    return this.parse(route, response.status, headersOf(response.headers), raw);
  }

  /**
   * Like `call`, but a binary success streams: the bytes are not held in memory, for a caller
   * that passes them on. Any other answer is read and checked as `call` does.
   */
  async callStream<R extends Route>(route: R, input: CallInput<R>): Promise<StreamResult<R>> {
    const response = await this.send(route, input, 'stream');
    const stream = response.data as Readable;
    const headers = headersOf(response.headers);
    if (isBinary(route.responses[response.status])) return { status: response.status, headers, stream };
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return this.parse(route, response.status, headers, Buffer.concat(chunks));
  }

  private async send<R extends Route>(route: R, input: CallInput<R>, responseType: 'arraybuffer' | 'stream') {
    const path = buildPath(route.path, (input.params ?? {}) as Record<string, string>);
    const headers: Record<string, string> = { ...input.headers };
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let data: unknown;
    if (route.body !== undefined && input.body !== undefined) {
      if (isBinary(route.body)) {
        headers['content-type'] = input.contentType ?? 'application/octet-stream';
        data = input.body;
      } else {
        headers['content-type'] = 'application/json';
        data = JSON.stringify(input.body);
      }
    }
    const repeatable = input.retry ?? (route.method !== 'POST' || route.idempotent === true);
    const tries = 1 + (this.options.retries ?? 2);

    for (let attempt = 1; ; attempt += 1) {
      try {
        const base = input.url ?? (typeof this.options.baseUrl === 'string' ? this.options.baseUrl : await this.options.baseUrl());
        const response = await sharedAxios.request<unknown>({
          method: route.method,
          url: input.url ?? base.replace(/\/+$/, '') + path,
          params: input.url === undefined ? input.query : undefined,
          data,
          headers,
          signal: input.signal,
          responseType,
          timeout: input.timeoutMs ?? this.options.timeoutMs ?? 30_000,
        });
        if (!(repeatable && RETRY_STATUSES.has(response.status) && attempt < tries)) return response;
        if (responseType === 'stream') (response.data as Readable).destroy();
      } catch (err) {
        if (input.signal?.aborted) throw new AppError('unavailable', 503, `call to ${this.options.service} was cancelled`);
        if (err instanceof AxiosError) this.options.onUnreachable?.();
        // A request that never got out (no connection, no address yet) can always be sent again;
        // one that may have arrived only when it is repeatable.
        const again = attempt < tries && (repeatable || neverConnected(err) || err instanceof AppError);
        if (!again) {
          if (err instanceof AppError) throw err;
          const reason = err instanceof AxiosError ? (err.code ?? err.message) : String(err);
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
