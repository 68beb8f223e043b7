import http from 'node:http';
import https from 'node:https';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { type AxiosAdapter, AxiosError, type AxiosResponse, CanceledError, type InternalAxiosRequestConfig } from 'axios';

/** Unpackers of the encodings a server may answer with, should one compress despite `accept-encoding: identity`. */
const DECODERS: Record<string, (() => NodeJS.ReadWriteStream) | undefined> = {
  gzip: () => zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  'x-gzip': () => zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  deflate: () => zlib.createUnzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  br: () => zlib.createBrotliDecompress(),
};

export interface NodeHttpAdapterOptions {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/**
 * An axios adapter straight on `node:http`, for kit's own axios instances: axios keeps its
 * request pipeline (instances, interceptors, errors), and the transport is the few steps kit's
 * calls need. axios's own http adapter costs about a third of a small call's CPU in what kit
 * never uses: proxies, redirects, progress and size-limit streams, form data, a per-request
 * `setKeepAlive` (a system call, as it differs from the agent's).
 *
 * What it serves, and all it serves: `baseURL` + `url` (a path, or an absolute URL); headers
 * (`false` or null drop one); data as a Buffer, a string or a Readable (piped; the request is
 * destroyed with the stream's error, or when it closes before its end); `responseType`
 * `'stream'` (the response as it arrives) or anything else (the body as one Buffer); `signal`
 * (cancels the request, or the response stream handed on); `timeout` (no response headers in
 * time); `decompress` (an answer with a `content-encoding` is unpacked); `validateStatus`.
 * Redirects are answers (never followed); there are no body size limits and no proxies.
 */
export function nodeHttpAdapter(options: NodeHttpAdapterOptions): AxiosAdapter {
  return (config) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      const signal = config.signal as AbortSignal | undefined;
      if (signal?.aborted) {
        reject(new CanceledError(undefined, config));
        return;
      }
      const path = config.url ?? '/';
      const target = path.startsWith('/') && config.baseURL ? originOf(config.baseURL) : new URL(path);
      const secure = target.protocol === 'https:';
      const headers = requestHeaders(config);
      const data = config.data as Buffer | string | Readable | undefined | null;
      if (Buffer.isBuffer(data)) headers['content-length'] = data.length;
      else if (typeof data === 'string') headers['content-length'] = Buffer.byteLength(data);

      const req = (secure ? https : http).request({
        agent: secure ? options.httpsAgent : options.httpAgent,
        protocol: target.protocol,
        hostname: target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname,
        port: target.port,
        method: (config.method ?? 'get').toUpperCase(),
        path: path.startsWith('/') ? path : target.pathname + target.search,
        headers,
      });
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        reject(err instanceof AxiosError ? err : AxiosError.from(err, undefined, config, req));
      };
      const succeed = (response: AxiosResponse): void => {
        settled = true;
        const valid = config.validateStatus;
        if (!valid || valid(response.status)) resolve(response);
        else
          reject(
            new AxiosError(`Request failed with status code ${response.status}`, badStatusCode(response.status), config, req, response),
          );
      };
      // Until the answer is settled the abort fails the call; after that (a stream handed on) it
      // cuts the stream, which its reader sees as an error.
      let answer: Readable | undefined;
      const onAbort = (): void => {
        const canceled = new CanceledError(undefined, config, req);
        req.destroy();
        answer?.destroy(canceled);
        fail(canceled);
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      req.on('error', fail);
      if (config.timeout) {
        req.setTimeout(config.timeout, () => {
          req.destroy();
          fail(new AxiosError(`timeout of ${config.timeout} ms exceeded`, AxiosError.ECONNABORTED, config, req));
        });
      }
      req.on('response', (res) => {
        // The stream's own errors are its reader's from here; the abort listener stays for it.
        if (config.timeout) req.setTimeout(0);
        let body: Readable = res;
        const encoding = res.headers['content-encoding'];
        const decoder = config.decompress !== false && encoding ? DECODERS[encoding.toLowerCase()] : undefined;
        if (decoder) {
          body = pipeline(res, decoder(), () => undefined) as unknown as Readable;
          delete res.headers['content-encoding'];
          delete res.headers['content-length'];
        }
        const response: AxiosResponse = {
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: res.headers,
          config,
          request: req,
          data: undefined,
        };
        if (config.responseType === 'stream') {
          answer = body;
          response.data = body;
          body.once('close', () => signal?.removeEventListener('abort', onAbort));
          succeed(response);
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        body.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
        });
        body.on('error', fail);
        // A response cut off before its end: Node signals it by 'aborted' and a premature close.
        res.once('aborted', () => fail(new AxiosError('stream has been aborted', AxiosError.ERR_BAD_RESPONSE, config, req, response)));
        body.once('end', () => {
          if (settled) return;
          signal?.removeEventListener('abort', onAbort);
          response.data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
          succeed(response);
        });
      });

      if (data instanceof Readable) {
        let ended = false;
        data.once('end', () => (ended = true));
        data.on('error', (err) => req.destroy(err));
        // A body stream closed before its end (its sender gone) leaves the request unfinished for good.
        data.once('close', () => {
          if (!ended && !data.errored) {
            const canceled = new CanceledError('Request stream has been aborted', config, req);
            req.destroy(canceled);
            fail(canceled);
          }
        });
        data.pipe(req);
      } else if (data !== undefined && data !== null) {
        // One write: Node sends the headers and a body given to `end` together.
        req.end(data);
      } else {
        req.end();
      }
    });
}

/** Origins parsed once each: kit's instances have one each, and a URL costs microseconds to parse. */
const origins = new Map<string, URL>();
const MAX_ORIGINS = 64;
function originOf(baseUrl: string): URL {
  let origin = origins.get(baseUrl);
  if (origin === undefined) {
    origin = new URL(baseUrl);
    if (origins.size >= MAX_ORIGINS) origins.clear();
    origins.set(baseUrl, origin);
  }
  return origin;
}

const badStatusCode = (status: number): string =>
  status >= 400 && status < 500 ? AxiosError.ERR_BAD_REQUEST : AxiosError.ERR_BAD_RESPONSE;

/** The request's headers as Node takes them: values that are false or null are left out. */
function requestHeaders(config: InternalAxiosRequestConfig): Record<string, string | number | string[]> {
  const headers: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.map(String) : typeof value === 'number' ? value : String(value);
  }
  return headers;
}
