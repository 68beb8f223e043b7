import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request } from 'express';
import type { RouteAuth } from '@pixelmill/contracts';
import { AppError } from './errors';

export interface ServiceTokens {
  internal?: string;
  worker?: string;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Digests of the secrets a server holds, made once: they are few and fixed. What a client
 * presents is digested each time, never kept (anyone can present anything).
 */
const heldDigests = new Map<string, Buffer>();
const MAX_HELD_DIGESTS = 32;
function heldDigest(secret: string): Buffer {
  let held = heldDigests.get(secret);
  if (held === undefined) {
    held = digest(secret);
    if (heldDigests.size >= MAX_HELD_DIGESTS) heldDigests.clear();
    heldDigests.set(secret, held);
  }
  return held;
}

/** Compares secrets in constant time (through fixed-length digests, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Like `sameSecret`, for a secret `presented` by a client against one `held` by this server. */
export function matchesHeldSecret(presented: string, held: string): boolean {
  return timingSafeEqual(digest(presented), heldDigest(held));
}

export function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/** The token a route asks for, or undefined when the route is open on this server. */
export function requiredToken(auth: RouteAuth | undefined, tokens: ServiceTokens): string | undefined {
  if (auth === 'internal') return tokens.internal;
  if (auth === 'worker') return tokens.worker ?? tokens.internal;
  return undefined;
}

export function unauthorized(message: string): AppError {
  return new AppError('unauthorized', 401, message);
}

/**
 * Why the request may not use the route by its bearer token (no token, or another one), or
 * undefined when it may (or the route is open). No error is made: a caller with another way in
 * (a signed URL) does not pay for one.
 */
export function bearerRefusal(req: Request, auth: RouteAuth | undefined, tokens: ServiceTokens): string | undefined {
  const required = requiredToken(auth, tokens);
  if (required === undefined) return undefined;
  const presented = bearerToken(req);
  if (presented === undefined) return `this route needs "Authorization: Bearer <${auth === 'worker' ? 'WORKER_TOKEN' : 'INTERNAL_TOKEN'}>"`;
  return matchesHeldSecret(presented, required) ? undefined : 'the bearer token is not valid here';
}
