import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request } from 'express';
import type { RouteAuth } from '@pixelmill/contracts';
import { AppError } from './errors';

export interface ServiceTokens {
  internal?: string;
  worker?: string;
}

/** Compares secrets in constant time (through fixed-length digests, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(a), digest(b));
}

export function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization');
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

/** Throws 401 unless the request carries the token the route asks for (or the route is open). */
export function checkBearer(req: Request, auth: RouteAuth | undefined, tokens: ServiceTokens): void {
  const required = requiredToken(auth, tokens);
  if (required === undefined) return;
  const presented = bearerToken(req);
  if (presented === undefined) {
    throw unauthorized(`this route needs "Authorization: Bearer <${auth === 'worker' ? 'WORKER_TOKEN' : 'INTERNAL_TOKEN'}>"`);
  }
  if (!sameSecret(presented, required)) throw unauthorized('the bearer token is not valid here');
}
