import { detectImageType, IMAGE_TYPES, OPERATIONS, OperationSchema, type ImageType, type Operation } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';

/** An upload that passed every check, ready to hand to master. */
export interface CheckedUpload {
  bytes: Buffer;
  contentType: ImageType;
  op: Operation;
}

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

/**
 * The real type of an upload decides, from its first bytes: the file name and the declared
 * Content-Type are the client's word and are never trusted.
 */
export function checkUpload(bytes: Buffer | undefined, op: Operation): CheckedUpload {
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
  return { bytes, contentType, op };
}
