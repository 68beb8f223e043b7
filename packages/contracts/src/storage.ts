import { z } from 'zod';
import { ErrorBodySchema, ImageTypeSchema, StorageStateSchema } from './common';
import { BINARY, defineRoute, EMPTY, STREAM } from './route';

/** One path segment: no slashes, no dots, so a key can never leave its folder. */
export const StorageKeySchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only');

/**
 * Where attempt `attempt` of task `id` stores its result: each attempt has its own key, so the
 * bytes of an attempt whose lease was lost can never replace the result of the one that finished.
 */
export function resultKey(id: string, attempt: number): string {
  return `${id}_${attempt}`;
}

/** One stored object, named by its state and key. */
export const ObjectRefSchema = z.object({ state: StorageStateSchema, key: StorageKeySchema });
export type ObjectRef = z.infer<typeof ObjectRefSchema>;

/** The routes on one object name it in their path. */
export const ObjectParamsSchema = ObjectRefSchema;

/** Objects one `deleteMany` call may name: as many as one S3 `DeleteObjects` request takes. */
export const MAX_DELETIONS = 1000;

export const DeletionsBodySchema = z.object({ objects: z.array(ObjectRefSchema).min(1).max(MAX_DELETIONS) });
export type DeletionsBody = z.infer<typeof DeletionsBodySchema>;

export const DeletionsSchema = z.object({
  /**
   * How many of the named objects are no longer stored, those that were gone already included: a
   * call sent again is a success (and S3 cannot tell the two apart).
   */
  deleted: z.number().int().nonnegative(),
});

/**
 * A signed URL's query: the request may go without the internal token when `signature` is the
 * HMAC of the method, state, key, `expires` (ms since the epoch) and `maxBytes` when given, and
 * `expires` is still ahead.
 */
export const SignedQuerySchema = z.object({
  expires: z.coerce.number().int().positive().optional(),
  /** Signed with the rest: an upload with more bytes is refused with 413. */
  maxBytes: z.coerce.number().int().positive().optional(),
  signature: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'must be a URL signature')
    .optional(),
});

/**
 * A read of part of an object: `Range: bytes=<first>-<last>` (one range; without `last`, to the
 * end) is answered 206 with those bytes and `Content-Range: bytes <first>-<last>/<size>`. Other
 * forms, and a range that starts past the end, are ignored: the whole object is sent.
 */
export const ObjectReadHeadersSchema = z.object({ range: z.string().max(200).optional() });

/**
 * Storage's signed word on an object it has just stored, handed out with the put's answer so that
 * whoever checks the object (master, when a worker says a result is stored) needs no read back:
 * the object's state, key, size, SHA-256 (hex) and what its first bytes say (the type by magic
 * bytes, the width and height its header declares; null when the header cannot be read), until
 * `expires` (ms since the epoch). `signature` is the HMAC-SHA256 (base64url) with the stack's
 * URL-signing key of the line `receipt`, then each field in the order above, one a line (kit's
 * `signReceipt`), so no field can be changed, nor the receipt taken for a signed URL. A storage
 * without a signing key gives none.
 */
export const StorageReceiptSchema = z.object({
  state: StorageStateSchema,
  key: StorageKeySchema,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex'),
  contentType: ImageTypeSchema.nullable(),
  width: z.number().int().nonnegative().nullable(),
  height: z.number().int().nonnegative().nullable(),
  expires: z.number().int().positive(),
  signature: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be an HMAC-SHA256 in base64url'),
});
export type StorageReceipt = z.infer<typeof StorageReceiptSchema>;

export const StoredObjectSchema = z.object({
  key: StorageKeySchema,
  state: StorageStateSchema,
  size: z.number().int().nonnegative(),
  contentType: ImageTypeSchema,
  /** Signed by storage when it has a signing key (see StorageReceiptSchema); absent when it runs open. */
  receipt: StorageReceiptSchema.optional(),
});
export type StoredObject = z.infer<typeof StoredObjectSchema>;

export const storageContract = {
  put: defineRoute({
    method: 'POST',
    path: '/objects/:state/:key',
    auth: 'internal',
    idempotent: true,
    summary:
      'Store bytes under a key in a state folder, once: the same bytes again are a success, other bytes a 409. ' +
      'The answer carries a receipt signed by storage (size, SHA-256, type, declared dimensions) when storage has a signing key',
    params: ObjectParamsSchema,
    query: SignedQuerySchema,
    body: STREAM,
    responses: {
      201: StoredObjectSchema,
      400: ErrorBodySchema,
      403: ErrorBodySchema,
      409: ErrorBodySchema,
      413: ErrorBodySchema,
      415: ErrorBodySchema,
    },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/objects/:state/:key',
    auth: 'internal',
    summary: 'Read stored bytes back, with their Content-Type; with a Range header, part of them',
    params: ObjectParamsSchema,
    query: SignedQuerySchema,
    headers: ObjectReadHeadersSchema,
    responses: { 200: BINARY, 206: BINARY, 400: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema },
  }),
  head: defineRoute({
    method: 'HEAD',
    path: '/objects/:state/:key',
    auth: 'internal',
    summary: 'Whether bytes are stored under a key',
    params: ObjectParamsSchema,
    responses: { 200: EMPTY, 400: EMPTY, 404: EMPTY },
  }),
  delete: defineRoute({
    method: 'DELETE',
    path: '/objects/:state/:key',
    auth: 'internal',
    summary: 'Delete stored bytes',
    params: ObjectParamsSchema,
    responses: { 204: EMPTY, 400: ErrorBodySchema, 404: ErrorBodySchema },
  }),
  deleteMany: defineRoute({
    method: 'POST',
    path: '/deletions',
    auth: 'internal',
    idempotent: true,
    summary:
      'Delete up to 1000 stored objects in one call, answering how many are no longer stored (those gone already count). ' +
      'A storage without this route (an older version) answers 404: delete one by one',
    body: DeletionsBodySchema,
    responses: { 200: DeletionsSchema, 400: ErrorBodySchema, 404: ErrorBodySchema },
  }),
} as const;
