import {
  detectImageType,
  IMAGE_TYPES,
  OPERATIONS,
  OperationSchema,
  readDeclaredDimensions,
  type Dimensions,
  type ImageType,
  type Operation,
} from '@pixelmill/contracts';
import type { Readable } from 'node:stream';
import { AppError, peekStream } from '@pixelmill/kit';

/**
 * An upload that passed every check, ready to hand to master: the bytes, or for a large upload
 * the stream they still arrive on (checked by their head), with its length.
 */
export type CheckedUpload = { contentType: ImageType; op: Operation } & (
  | { bytes: Buffer }
  | { stream: Readable; length: number }
);

/**
 * How much of a streamed upload is read ahead for the checks: the type is in the first bytes, the
 * declared size in the header (a JPEG's can follow up to 64 KB of metadata).
 */
export const UPLOAD_HEAD_BYTES = 128 * 1024;

/** How large an image may say it is, in its header; checked before anything decodes it. */
export interface ImageLimits {
  /** Width times height. */
  maxPixels: number;
  /** Width and height, each. */
  maxSide: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxPixels: 50_000_000, maxSide: 16_384 };

/** The accepted formats as people name them: PNG, JPEG, … */
export const IMAGE_TYPE_NAMES = IMAGE_TYPES.map((type) => type.replace('image/', '').toUpperCase());
const KNOWN_TYPES = `${IMAGE_TYPE_NAMES.slice(0, -1).join(', ')} or ${IMAGE_TYPE_NAMES.at(-1)}`;

/** Checks an operation name that did not come through a contract schema (a form field). */
export function parseOperation(value: unknown): Operation {
  const result = OperationSchema.safeParse(value);
  if (!result.success) {
    throw new AppError('bad_request', 400, `unknown op "${String(value)}"; allowed: ${OPERATIONS.join(', ')}`);
  }
  return result.data;
}

const formatCount = (n: number): string => n.toLocaleString('en-US');

/**
 * Refuses an image whose header declares more pixels than the limits, a decompression bomb
 * say: a few hundred bytes of PNG can declare 100000×100000 pixels. Only the header is read.
 */
export function checkDeclaredSize({ width, height }: Dimensions, { maxPixels, maxSide }: ImageLimits): void {
  // The messages are built only when a limit is broken: toLocaleString is slow, and most uploads pass.
  const declared = (): string => `the image declares ${formatCount(width)}×${formatCount(height)} pixels`;
  const details = { width, height, maxPixels, maxSide };
  // The pixel count first: it is what a decompression bomb is about.
  if (width * height > maxPixels) {
    throw new AppError(
      'payload_too_large',
      413,
      `${declared()} (${formatCount(width * height)} in all); the limit is ${formatCount(maxPixels)} pixels`,
      details,
    );
  }
  if (width > maxSide || height > maxSide) {
    throw new AppError('payload_too_large', 413, `${declared()}; the limit is ${formatCount(maxSide)} pixels a side`, details);
  }
}

/**
 * The real type of an upload decides, from its first bytes: the file name and the declared
 * Content-Type are the client's word and are never trusted. The size its header declares must
 * be within the limits; a header that cannot be read passes, and the worker reports the damage.
 */
export function checkUpload(bytes: Buffer | undefined, op: Operation, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): CheckedUpload {
  if (!bytes || bytes.length === 0) {
    throw new AppError(
      'bad_request',
      400,
      'no image: send it as the multipart form field "image", or as a raw image body (e.g. Content-Type: image/png)',
    );
  }
  const contentType = detectImageType(bytes.subarray(0, 16));
  if (!contentType) {
    throw new AppError(
      'unsupported_media_type',
      415,
      `the upload is not a ${KNOWN_TYPES} image (judged by its content, not its name or declared type)`,
    );
  }
  const declared = readDeclaredDimensions(contentType, bytes);
  if (declared) checkDeclaredSize(declared, limits);
  return { bytes, contentType, op };
}

/**
 * Checks an upload that is still arriving, by its first bytes, as `checkUpload` does; the stream
 * is passed on whole, never held in memory. `length` is its declared length.
 */
export async function checkUploadStream(
  stream: Readable,
  length: number,
  op: Operation,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<CheckedUpload> {
  const head = await peekStream(stream, Math.min(length, UPLOAD_HEAD_BYTES));
  const { contentType } = checkUpload(head, op, limits);
  return { stream, length, contentType, op };
}
