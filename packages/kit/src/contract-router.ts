import type { Readable } from 'node:stream';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { ZodType } from 'zod';
import {
  isBinary,
  isEmpty,
  isStream,
  type HeadersOf,
  type ParamsOf,
  type QueryOf,
  type RequestBodyOf,
  type ResponseOf,
  type Route,
  type StreamBody,
} from '@pixelmill/contracts';
import { bearerRefusal, unauthorized, type ServiceTokens } from './auth';
import { AppError, invalidRequest } from './errors';
import { rawBodyParser, refuseCompressed, tooLarge } from './raw-body';

/**
 * A streamed body (`STREAM`) as its handler gets it: unread, checked only against its declared
 * length. A body without a declared length is the handler's to count: no more than `limit`.
 */
export interface StreamedBody {
  /** The request itself. A compressed body is refused (415): it would be unpacked past any declared length. */
  stream: Readable;
  /** Content-Length as declared, no more than `limit`; undefined for a chunked body. */
  length: number | undefined;
  /** Content-Type as declared: the client's word, not checked. */
  contentType: string | undefined;
  /** The most bytes this body may have. */
  limit: number;
}

export interface RouteInput<R extends Route> {
  params: ParamsOf<R>;
  query: QueryOf<R>;
  headers: HeadersOf<R>;
  /** A binary body arrives as a Buffer (the raw body parser's), a streamed one unread. */
  body: R extends { body: StreamBody } ? StreamedBody : RequestBodyOf<R, Buffer>;
}

/** A handler answers with one of the route's documented responses, or writes `res` itself and returns nothing. */
export type Reply<R extends Route> = ResponseOf<R> & { headers?: Record<string, string> };
export type RouteHandler<R extends Route> = (
  input: RouteInput<R>,
  req: Request,
  res: Response,
) => Promise<Reply<R> | void> | Reply<R> | void;

export type ContractHandlers<C extends Record<string, Route>> = { [K in keyof C]: RouteHandler<C[K]> };

export interface MountOptions {
  /** Largest JSON body accepted. */
  jsonLimit?: number;
  /** Largest raw (binary or streamed) body accepted; larger ones are refused with 413. */
  binaryLimit?: number;
  /** A streamed route's own limit, from its request (a signed URL may lower it); `binaryLimit` otherwise. */
  streamLimits?: Record<string, (req: Request) => number>;
  /**
   * Replaces the body parser of the named routes (e.g. multipart uploads). On a streamed route it
   * runs first, and the route's declared-length check after it.
   */
  bodyParsers?: Record<string, RequestHandler>;
  /** The tokens routes ask for by their `auth`; a token left unset leaves its routes open. */
  tokens?: ServiceTokens;
  /**
   * Other ways into a guarded route, tried when the bearer token is missing: e.g. a signed URL.
   * A grant returns true to let the request in, false to refuse it, or throws its own error.
   */
  grants?: Record<string, (req: Request) => boolean>;
}

/** A streamed body, unread; one that declares more than `limit` is refused at once, nothing read. */
function streamedBody(req: Request, limit: number): StreamedBody {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > limit) throw tooLarge(limit);
  refuseCompressed(req);
  return { stream: req, length, contentType: req.headers['content-type'], limit };
}

function parsePart<T>(schema: ZodType | undefined, value: unknown, where: string): T {
  if (!schema) return {} as T;
  const result = schema.safeParse(value);
  if (!result.success) throw invalidRequest(result.error, where);
  return result.data as T;
}

function sendReply(route: Route, reply: { status: number; body: unknown; headers?: Record<string, string> }, res: Response): void {
  const spec = route.responses[reply.status];
  if (spec === undefined) throw new Error(`${route.method} ${route.path} has no documented ${reply.status} response`);
  if (reply.headers) res.set(reply.headers);
  res.status(reply.status);
  if (isEmpty(spec)) res.end();
  else if (isBinary(spec)) res.end(reply.body as Buffer);
  else if (typeof reply.body === 'string') res.send(reply.body);
  else res.json(reply.body);
}

/**
 * Mounts every route of a contract on a router. Requests are parsed with the contract's schemas
 * (a mismatch is a 400 naming the field); a known path with another method is a 405.
 */
export function mountContract<C extends Record<string, Route>>(
  router: Router,
  contract: C,
  // A conditional type keeps TypeScript from inferring C from the handlers, so literal statuses type-check.
  handlers: C extends Record<string, Route> ? ContractHandlers<C> : never,
  options: MountOptions = {},
): void {
  const jsonParser = express.json({ limit: options.jsonLimit ?? 1024 * 1024 });
  const binaryLimit = options.binaryLimit ?? 25 * 1024 * 1024;
  const rawParser = rawBodyParser({ limit: binaryLimit });
  const methodsByPath = new Map<string, Set<string>>();
  // HEAD routes go first: Express would otherwise answer HEAD with the GET route of the same path.
  const names = Object.keys(contract).sort((a, b) => Number(contract[b]!.method === 'HEAD') - Number(contract[a]!.method === 'HEAD'));

  for (const name of names) {
    const route = contract[name]!;
    const handler = handlers[name] as RouteHandler<Route>;
    const methods = methodsByPath.get(route.path) ?? new Set<string>();
    methods.add(route.method);
    if (route.method === 'GET') methods.add('HEAD');
    methodsByPath.set(route.path, methods);

    const streamed = isStream(route.body);
    const bodyParser =
      options.bodyParsers?.[name] ?? (route.body === undefined || streamed ? undefined : isBinary(route.body) ? rawParser : jsonParser);
    const limitOf = options.streamLimits?.[name] ?? (() => binaryLimit);
    const grant = options.grants?.[name];
    const authorize: RequestHandler = (req, _res, next) => {
      const refusal = bearerRefusal(req, route.auth, options.tokens ?? {});
      if (refusal !== undefined && !grant?.(req)) throw unauthorized(refusal);
      next();
    };
    const handle: RequestHandler = async (req, res) => {
      const headers = parsePart<Record<string, unknown>>(route.headers, req.headers, 'headers');
      const params = parsePart<Record<string, string>>(route.params, req.params, 'params');
      const query = parsePart<Record<string, unknown>>(route.query, req.query, 'query');
      let body: unknown;
      if (streamed) {
        body = streamedBody(req, limitOf(req));
      } else if (route.body !== undefined && isBinary(route.body)) {
        body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      } else if (route.body !== undefined) {
        body = parsePart(route.body, req.body, 'body');
      }
      const reply = await handler({ params, query, headers, body } as RouteInput<Route>, req, res);
      if (reply) sendReply(route, reply, res);
    };
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete' | 'head';
    // Authorization comes before the body is read: a stranger's upload is never buffered.
    if (bodyParser) router[method](route.path, authorize, bodyParser, handle);
    else router[method](route.path, authorize, handle);
  }

  for (const [path, methods] of methodsByPath) {
    const allow = [...methods].sort().join(', ');
    router.all(path, (req, res) => {
      res.setHeader('Allow', allow);
      throw new AppError('method_not_allowed', 405, `${req.method} is not allowed on ${path}; allowed: ${allow}`);
    });
  }
}
