import { createHmac } from 'node:crypto';
import { detectImageType, readDeclaredDimensions, type ImageType, type StorageReceipt } from '@pixelmill/contracts';
import { sameSecret } from './auth';
import { IMAGE_TYPE_BYTES } from './image-head';

/**
 * How long a receipt vouches for its object: a worker hands it to master right after its upload,
 * so minutes are plenty, and a receipt kept aside is soon worth nothing.
 */
export const RECEIPT_TTL_MS = 10 * 60_000;

/** What an image's first bytes say of it: the type by magic bytes, and the size its header declares. */
export interface ImageFacts {
  contentType: ImageType | null;
  width: number | null;
  height: number | null;
}

/** The facts of an image's head (IMAGE_HEAD_BYTES of it, or all of a smaller image). */
export function imageFactsOf(head: Uint8Array): ImageFacts {
  const contentType = detectImageType(head.subarray(0, IMAGE_TYPE_BYTES));
  const declared = contentType ? readDeclaredDimensions(contentType, head) : null;
  return { contentType, width: declared?.width ?? null, height: declared?.height ?? null };
}

type UnsignedReceipt = Omit<StorageReceipt, 'signature'>;

/**
 * The receipt's signature: every field, one a line, after `receipt`, a first line no signed URL
 * has (those start with their method), so neither can pass for the other.
 */
export function signReceipt(receipt: UnsignedReceipt, signingKey: string): string {
  const { state, key, size, sha256, contentType, width, height, expires } = receipt;
  return createHmac('sha256', signingKey)
    .update(`receipt\n${state}\n${key}\n${size}\n${sha256}\n${contentType ?? ''}\n${width ?? ''}\n${height ?? ''}\n${expires}`)
    .digest('base64url');
}

/** A receipt for an object just stored, valid for RECEIPT_TTL_MS. */
export function issueReceipt(facts: Omit<UnsignedReceipt, 'expires'>, signingKey: string, now = Date.now()): StorageReceipt {
  const unsigned = { ...facts, expires: now + RECEIPT_TTL_MS };
  return { ...unsigned, signature: signReceipt(unsigned, signingKey) };
}

/**
 * Why a receipt does not vouch for the object `expected`, or undefined when it does: its signature
 * must match its fields (compared in constant time), name that state and key, and be unexpired.
 */
export function receiptProblem(
  receipt: StorageReceipt,
  expected: { state: StorageReceipt['state']; key: string },
  signingKey: string,
  now = Date.now(),
): string | undefined {
  if (!sameSecret(signReceipt(receipt, signingKey), receipt.signature)) {
    return "the receipt's signature does not match its fields (not signed by storage, or altered)";
  }
  if (receipt.state !== expected.state || receipt.key !== expected.key) {
    return `the receipt is for ${receipt.state}/${receipt.key}, not ${expected.state}/${expected.key}`;
  }
  if (receipt.expires <= now) return `the receipt expired at ${new Date(receipt.expires).toISOString()}`;
  return undefined;
}
