import { createHmac } from 'node:crypto';
import type { StorageState } from '@pixelmill/contracts';
import { sameSecret } from './auth';
import { AppError } from './errors';

/** What a signed storage URL allows: one method on one object until `expires` (ms since the epoch). */
export interface ObjectGrant {
  method: 'GET' | 'POST';
  state: StorageState;
  key: string;
  expires: number;
  /** The most bytes an upload may have (a result's bound, from its source's size); unsigned when absent. */
  maxBytes?: number;
}

/** The signing key of the stack, derived from INTERNAL_TOKEN unless URL_SIGNING_KEY is given. */
export function deriveSigningKey(internalToken: string | undefined, explicitKey?: string): string | undefined {
  if (explicitKey) return explicitKey;
  return internalToken && createHmac('sha256', internalToken).update('pixelmill storage url signing').digest('base64url');
}

export function signObject(grant: ObjectGrant, signingKey: string): string {
  return createHmac('sha256', signingKey)
    .update(`${grant.method}\n${grant.state}\n${grant.key}\n${grant.expires}`)
    .update(grant.maxBytes === undefined ? '' : `\nmax ${grant.maxBytes}`)
    .digest('base64url');
}

/** A URL with `expires` (and `maxBytes`) and `signature` query parameters for one storage object. */
export function signedObjectUrl(storageUrl: string, grant: ObjectGrant, signingKey: string | undefined): string {
  const url = new URL(`${storageUrl.replace(/\/+$/, '')}/objects/${grant.state}/${encodeURIComponent(grant.key)}`);
  if (signingKey) {
    url.searchParams.set('expires', String(grant.expires));
    if (grant.maxBytes !== undefined) url.searchParams.set('maxBytes', String(grant.maxBytes));
    url.searchParams.set('signature', signObject(grant, signingKey));
  }
  return url.toString();
}

/**
 * Checks a signed request: true when the signature matches the method, state, key, expiry and size bound
 * and the expiry is ahead; false when the request carries no signature. A wrong or expired
 * signature is a 403 that says which.
 */
export function verifyObjectSignature(
  grant: Omit<ObjectGrant, 'expires'> & { expires?: number; signature?: string },
  signingKey: string | undefined,
  now = Date.now(),
): boolean {
  if (grant.signature === undefined || grant.expires === undefined || signingKey === undefined) return false;
  const expected = signObject({ ...grant, expires: grant.expires }, signingKey);
  if (!sameSecret(expected, grant.signature)) {
    throw new AppError('forbidden', 403, `the signature does not allow ${grant.method} on ${grant.state}/${grant.key}`);
  }
  if (grant.expires <= now) throw new AppError('forbidden', 403, 'the signed URL has expired');
  return true;
}
