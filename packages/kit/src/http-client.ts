import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import axios, { type AxiosError, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse, isAxiosError } from 'axios';
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
import { backoffDelay } from './backoff';
import { AppError, describeZodError } from './errors';
import { nodeHttpAdapter } from './http-adapter';
import { currentRequestId, REQUEST_ID_HEADER } from './request-context';
import { sleep } from './sleep';

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
  { status: number; headers: Record<string, string>; stream: Readable } | (CallResult<R> & { stream?: undefined });

export interface ContractClientOptions {
  /** The service's name, for error messages. */
  service: string;
  /** Where the service is now: a fixed URL or a resolver (discovery). */
  baseUrl: string | (() => Promise<string>);
  timeoutMs?: number;
  /** Bearer token sent on every call. */
  token?: string;
  /**
   * Called when the service could not be reached (no connection, a reset, no answer in time),
   * with the base URL that try was sent to (undefined for an absolute `url`): discovery drops
   * that instance for a while.
   */
  onUnreachable?: (baseUrl: string | undefined) => void;
  /** Extra tries of a call that is safe to repeat, after a connection error or a 502/503/504 (default 2). */
  retries?: number;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 2_000;

/** Capped exponential backoff with jitter: 100, 200, 400 … ms, each between half and all of it. */
export function retryDelayMs(attempt: number): number {
  return backoffDelay(attempt, { initialMs: RETRY_BASE_MS, maxMs: RETRY_MAX_MS });
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

const neverConnected = (err: unknown): boolean => err instanceof TransportError && NEVER_CONNECTED.has(err.code ?? '');

// The keep-alive probe delay is set on a socket each time it goes back to the pool; it costs a
// system call only when it changes, so every setter of it must agree (axios's own adapter set 60 s).
const KEEP_ALIVE_PROBE_MS = 60_000;
const httpAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: KEEP_ALIVE_PROBE_MS });
const httpsAgent = new https.Agent({ keepAlive: true, keepAliveMsecs: KEEP_ALIVE_PROBE_MS });
const adapter = nodeHttpAdapter({ httpAgent, httpsAgent });

/**
 * One try of a call: its deadline and its cancelling. The timeout covers the try until its
 * answer is read, or handed on as a stream (`done()`); the caller's signal cancels it too.
 */
class Try {
  readonly controller = new AbortController();
  timedOut = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.controller.abort();

  constructor(
    readonly call: OutgoingCall,
    readonly attempt: number,
    /** The base URL this try went to (undefined for an absolute `url`). */
    readonly baseUrl: string | undefined,
    timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, timeoutMs);
    if (callerSignal?.aborted) this.controller.abort();
    else callerSignal?.addEventListener('abort', this.onAbort, { once: true });
  }

  done(): void {
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onAbort);
  }
}

/** The try each request belongs to, by its signal (axios copies a request's config, not its signal). */
const tries = new WeakMap<AbortSignal, Try>();
const tryOf = (config: AxiosRequestConfig | undefined): Try | undefined =>
  config?.signal instanceof AbortSignal ? tries.get(config.signal) : undefined;

/** The retry interceptor, for an answer: a 502/503/504 to a call that may be repeated is tried again. */
async function retryAnswer(response: AxiosResponse): Promise<AxiosResponse> {
  const current = tryOf(response.config);
  if (current === undefined || !current.call.retriesStatus(response.status, current.attempt)) return response;
  current.done();
  if (response.data instanceof Readable) response.data.resume();
  return current.call.again(current.attempt);
}

/** The retry interceptor, for a request that got no answer: tried again where safe, else an AppError. */
function retryFailure(error: unknown): Promise<AxiosResponse> {
  const current = isAxiosError(error) ? tryOf(error.config) : undefined;
  if (current === undefined) throw error;
  current.done();
  const failure = current.timedOut
    ? new TransportError(`no answer within ${current.call.timeoutMs} ms`, 'ETIMEDOUT')
    : new TransportError((error as AxiosError).message, (error as AxiosError).code);
  return current.call.retryAfter(current.attempt, failure, current.baseUrl);
}

/** How many targets keep an axios instance; past it the oldest is dropped (services move when restarted). */
const MAX_TARGETS = 64;
const instances = new Map<string, AxiosInstance>();

/**
 * The axios instance of a target (an origin): every status an answer for the typed layer to
 * check, bodies as bytes or a stream with no transformation, and the retry interceptor. Its
 * adapter (nodeHttpAdapter) is the transport: keep-alive agents, no redirects followed, no body
 * size limits of its own, no proxy from the environment.
 */
function axiosFor(origin: string): AxiosInstance {
  let instance = instances.get(origin);
  if (instance === undefined) {
    instance = axios.create({
      baseURL: origin,
      validateStatus: () => true,
      transformRequest: [],
      transformResponse: [],
      // The services do not compress (images are compressed already): ask for none, and should
      // an answer come compressed anyway, it is unpacked.
      decompress: true,
      headers: { 'accept-encoding': 'identity' },
      adapter,
    });
    instance.interceptors.response.use(retryAnswer, retryFailure);
    if (instances.size >= MAX_TARGETS) instances.delete(instances.keys().next().value!);
    instances.set(origin, instance);
  }
  return instance;
}

/** A query as the contracts define them: one plain value per parameter, or none. */
type QueryValues = Record<string, string | number | boolean | null | undefined>;

/** A route's query as a URL's search part (`?…`, or nothing): absent values are left out. */
function searchOf(query: QueryValues | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.append(name, String(value));
  }
  const search = params.toString();
  return search === '' ? '' : `?${search}`;
}

/** Base URLs split into origin and path prefix, each parsed once (a URL costs microseconds to parse). */
const bases = new Map<string, { origin: string; prefix: string }>();
function splitBase(baseUrl: string): { origin: string; prefix: string } {
  let base = bases.get(baseUrl);
  if (base === undefined) {
    const url = new URL(baseUrl);
    base = { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') };
    if (bases.size >= MAX_TARGETS) bases.delete(bases.keys().next().value!);
    bases.set(baseUrl, base);
  }
  return base;
}

/** One call on its way: what it sends, where, and whether it may be sent again. */
class OutgoingCall {
  constructor(
    private readonly options: ContractClientOptions,
    private readonly request: {
      method: string;
      path: string;
      query?: QueryValues;
      url?: string;
      headers: Record<string, string | false>;
      body?: Buffer | string | Readable;
      stream: boolean;
      signal?: AbortSignal;
    },
    readonly timeoutMs: number,
    private readonly repeatable: boolean,
    private readonly tries: number,
  ) {}

  /** Sends try `attempt`; the retry interceptor sends the next ones. */
  async send(attempt: number): Promise<AxiosResponse> {
    let target: { origin: string; path: string; baseUrl?: string };
    try {
      target = await this.target();
    } catch (err) {
      return this.retryAfter(attempt, err, undefined);
    }
    const current = new Try(this, attempt, target.baseUrl, this.timeoutMs, this.request.signal);
    tries.set(current.controller.signal, current);
    return axiosFor(target.origin).request({
      method: this.request.method,
      url: target.path,
      headers: this.request.headers,
      data: this.request.body,
      responseType: this.request.stream ? 'stream' : 'arraybuffer',
      signal: current.controller.signal,
    });
  }

  retriesStatus(status: number, attempt: number): boolean {
    return this.repeatable && RETRY_STATUSES.has(status) && attempt < this.tries;
  }

  /** After a pause, the next try, from a target resolved again (discovery may know a new one). */
  async again(attempt: number): Promise<AxiosResponse> {
    await sleep(retryDelayMs(attempt), this.request.signal);
    return this.send(attempt + 1);
  }

  /**
   * Try `attempt`, sent to `baseUrl`, failed with `err`: the next try where that is safe (from a
   * target resolved again: discovery picks another instance), else the call's AppError.
   */
  async retryAfter(attempt: number, err: unknown, baseUrl: string | undefined): Promise<AxiosResponse> {
    // The body's sender is gone, not the service: no retry, and nothing to report as an outage.
    const source = this.request.body;
    if (source instanceof Readable && (source.errored || (source.destroyed && !source.readableEnded))) {
      throw source.errored instanceof AppError
        ? source.errored
        : new AppError('bad_request', 400, 'the upload was cut off before it could be passed on');
    }
    if (this.request.signal?.aborted) throw new AppError('unavailable', 503, `call to ${this.options.service} was cancelled`);
    if (!(err instanceof AppError)) this.options.onUnreachable?.(baseUrl);
    // A request that never got out (no connection, no address yet) can always be sent again;
    // one that may have arrived only when it is repeatable.
    if (attempt < this.tries && (this.repeatable || neverConnected(err) || err instanceof AppError)) return this.again(attempt);
    if (err instanceof AppError) throw err;
    const reason = (err as { code?: string }).code ?? (err as Error).message ?? String(err);
    throw new AppError('unavailable', 503, `${this.options.service} is unreachable (${reason})`);
  }

  /** Where this try goes: an origin, and the path and query there. */
  private async target(): Promise<{ origin: string; path: string; baseUrl?: string }> {
    if (this.request.url !== undefined) {
      const url = new URL(this.request.url);
      return { origin: url.origin, path: url.pathname + url.search };
    }
    const baseUrl = typeof this.options.baseUrl === 'string' ? this.options.baseUrl : await this.options.baseUrl();
    const { origin, prefix } = splitBase(baseUrl);
    return { origin, path: prefix + this.request.path + searchOf(this.request.query), baseUrl };
  }
}

/** The whole body of a response; a single chunk is returned as it is, not copied. */
async function readBody(response: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * A typed HTTP client over a contract: sends exactly what the route declares and checks the
 * answer against the route's schema for that status, so a drifting service fails loudly.
 * A service that cannot be reached is an AppError 503 (`unavailable`). It sends through axios,
 * one instance per target; retries are its one interceptor's.
 */
export class ContractClient {
  /** The Authorization header of every call, made once. */
  private readonly authorization: string | undefined;

  constructor(private readonly options: ContractClientOptions) {
    this.authorization = options.token ? `Bearer ${options.token}` : undefined;
  }

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
    const headers: Record<string, string | false> = { ...input.headers };
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    let body: Buffer | string | Readable | undefined;
    if (route.body !== undefined && input.body !== undefined) {
      if (isBinary(route.body)) {
        headers['content-type'] = input.contentType ?? 'application/octet-stream';
        // A buffer's length is its own; a stream's, when known, is the caller's to tell.
        if (input.contentLength !== undefined && !Buffer.isBuffer(input.body)) headers['content-length'] = String(input.contentLength);
        body = input.body;
      } else {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(input.body);
      }
    } else {
      // Else axios would label a POST without a body as a form.
      headers['content-type'] ??= false;
    }
    const streamedBody = body instanceof Readable;
    const call = new OutgoingCall(
      this.options,
      {
        method: route.method,
        path: buildPath(route.path, input.params ?? {}),
        query: input.query,
        url: input.url,
        headers,
        body,
        stream: streamBinary,
        signal: input.signal,
      },
      input.timeoutMs ?? this.options.timeoutMs ?? 30_000,
      // A streamed body is never sent twice: its bytes are gone once read.
      !streamedBody && (input.retry ?? (route.method !== 'POST' || route.idempotent === true)),
      streamedBody ? 1 : 1 + (this.options.retries ?? 2),
    );
    const response = await call.send(1);
    const current = tryOf(response.config);
    const status = response.status;
    const answerHeaders = headersOf(response.headers);
    if (!(response.data instanceof Readable)) {
      current?.done();
      return { status, headers: answerHeaders, body: response.data as Buffer };
    }
    if (isBinary(route.responses[status])) {
      current?.done();
      return { status, headers: answerHeaders, stream: response.data };
    }
    try {
      return { status, headers: answerHeaders, body: await readBody(response.data) };
    } catch (err) {
      this.options.onUnreachable?.(current?.baseUrl);
      throw current?.timedOut
        ? new AppError('unavailable', 503, `${this.options.service} is unreachable (ETIMEDOUT)`)
        : new AppError(
            'unavailable',
            503,
            `${this.options.service} is unreachable (${(err as { code?: string }).code ?? (err as Error).message})`,
          );
    } finally {
      current?.done();
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
      const parsed = spec.safeParse(json);
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
