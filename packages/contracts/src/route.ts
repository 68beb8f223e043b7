import { z } from 'zod';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';

/** Marks a body of raw bytes (an image), sent and received as-is, never as JSON. */
export interface BinaryBody {
  readonly kind: 'binary';
}
export const BINARY: BinaryBody = Object.freeze({ kind: 'binary' as const });

/**
 * A request body of raw bytes that the server hands to its handler unread, as a stream, to pass
 * on as it arrives (an upload on its way to storage) rather than hold whole. To clients and
 * documents it is a binary body like any other.
 */
export interface StreamBody extends BinaryBody {
  readonly streamed: true;
}
export const STREAM: StreamBody = Object.freeze({ kind: 'binary' as const, streamed: true as const });

/** A response with no body at all (204, HEAD answers). */
export interface EmptyBody {
  readonly kind: 'empty';
}
export const EMPTY: EmptyBody = Object.freeze({ kind: 'empty' as const });

export type BodySpec = z.ZodType | BinaryBody | EmptyBody;

/**
 * Who may call a route: anyone (`public`), the services of the stack holding `INTERNAL_TOKEN`
 * (`internal`), workers holding `WORKER_TOKEN` (`worker`), or clients holding one of the
 * frontend's API keys (`apiKey`, checked by the frontend itself). A server without the token or
 * keys configured leaves the route open.
 */
export type RouteAuth = 'public' | 'internal' | 'worker' | 'apiKey';

/** One endpoint: the single description shared by the server that answers it and every caller. */
export interface Route {
  readonly method: HttpMethod;
  /** Express-style path; `:name` segments are filled from `params`. */
  readonly path: string;
  readonly summary: string;
  /** Who may call it; `public` when absent. */
  readonly auth?: RouteAuth;
  /** A POST that is safe to send again (retried by clients after a lost answer). GET, HEAD and DELETE always are. */
  readonly idempotent?: boolean;
  readonly params?: z.ZodType<Record<string, string>>;
  readonly query?: z.ZodType<Record<string, unknown>>;
  /** Request headers the route reads (lower-case names); others are ignored. */
  readonly headers?: z.ZodType<Record<string, unknown>>;
  readonly body?: z.ZodType | BinaryBody;
  /** The body may also be a multipart/form-data form with these fields (files as `z.file()`); the server parses it. */
  readonly form?: z.ZodObject;
  readonly responses: Readonly<Record<number, BodySpec>>;
}

export function defineRoute<const R extends Route>(route: R): R {
  return route;
}

export function isBinary(spec: unknown): spec is BinaryBody {
  return typeof spec === 'object' && spec !== null && (spec as { kind?: unknown }).kind === 'binary';
}

export function isStream(spec: unknown): spec is StreamBody {
  return isBinary(spec) && (spec as { streamed?: unknown }).streamed === true;
}

export function isEmpty(spec: unknown): spec is EmptyBody {
  return typeof spec === 'object' && spec !== null && (spec as { kind?: unknown }).kind === 'empty';
}

/**
 * What a body spec carries once parsed: JSON schemas give their output type, bytes a `Uint8Array`.
 * `Bytes` narrows them for a transport that hands a subtype (a server or client on Node may name its
 * own byte class); the contracts themselves assume nothing beyond `Uint8Array`.
 */
export type BodyOf<S, Bytes extends Uint8Array = Uint8Array> = S extends z.ZodType ? z.output<S> : S extends BinaryBody ? Bytes : undefined;
export type BodyInputOf<S, Bytes extends Uint8Array = Uint8Array> = S extends z.ZodType
  ? z.input<S>
  : S extends BinaryBody
    ? Bytes
    : undefined;

export type ParamsOf<R extends Route> = R extends { params: infer P extends z.ZodType } ? z.output<P> : Record<string, never>;
export type QueryOf<R extends Route> = R extends { query: infer Q extends z.ZodType } ? z.output<Q> : Record<string, never>;
export type HeadersOf<R extends Route> = R extends { headers: infer H extends z.ZodType } ? z.output<H> : Record<string, never>;
export type RequestBodyOf<R extends Route, Bytes extends Uint8Array = Uint8Array> = R extends { body: infer B }
  ? BodyOf<B, Bytes>
  : undefined;

/** The union of every documented answer of a route, discriminated by `status`. */
export type ResponseOf<R extends Route, Bytes extends Uint8Array = Uint8Array> = {
  [S in keyof R['responses'] & number]: { status: S; body: BodyOf<R['responses'][S], Bytes> };
}[keyof R['responses'] & number];

/** Fills `:name` segments of a route path, encoding each value as one path segment. */
export function buildPath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, (_match, name: string) => {
    const value = params[name];
    if (value === undefined) {
      throw new Error(`missing path parameter "${name}" for ${path}`);
    }
    return encodeURIComponent(value);
  });
}
