import { z } from 'zod';
import { ErrorBodySchema, TimestampSchema } from './common';
import { defineRoute, EMPTY } from './route';

export const KvKeySchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'letters, digits, ".", "_", "-" and "/" only, starting with a letter or digit');

export const KvEntrySchema = z.object({
  key: KvKeySchema,
  value: z.string(),
  updatedAt: TimestampSchema,
  /** When the entry disappears unless it is set again; null means never. */
  expiresAt: TimestampSchema.nullable(),
});
export type KvEntry = z.infer<typeof KvEntrySchema>;

export const KvKeyParamsSchema = z.object({ key: KvKeySchema });

export const KvSetBodySchema = z.object({
  value: z.string().max(64 * 1024),
  ttlSeconds: z.number().int().positive().max(31_536_000).optional(),
});
export type KvSetBody = z.infer<typeof KvSetBodySchema>;

export const KvListQuerySchema = z.object({
  prefix: z.string().max(256).default(''),
  /** Entries in one page, in key order. */
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
  /** The `nextCursor` of the previous page: this page starts after that key. */
  cursor: KvKeySchema.optional(),
});

export const KvListSchema = z.object({
  items: z.array(KvEntrySchema),
  /**
   * Where the next page starts (pass it as `cursor`); null when this page is the last. A kv older
   * than pages leaves it out and answers the whole listing: read as null.
   */
  nextCursor: KvKeySchema.nullable().default(null),
});

export const kvContract = {
  set: defineRoute({
    method: 'POST',
    path: '/keys/:key',
    auth: 'internal',
    idempotent: true,
    summary: 'Set a key to a value, optionally with a time to live',
    params: KvKeyParamsSchema,
    body: KvSetBodySchema,
    responses: { 200: KvEntrySchema, 400: ErrorBodySchema },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/keys/:key',
    auth: 'internal',
    summary: "Get a key's value",
    params: KvKeyParamsSchema,
    responses: { 200: KvEntrySchema, 400: ErrorBodySchema, 404: ErrorBodySchema },
  }),
  delete: defineRoute({
    method: 'DELETE',
    path: '/keys/:key',
    auth: 'internal',
    summary: 'Delete a key',
    params: KvKeyParamsSchema,
    responses: { 204: EMPTY, 400: ErrorBodySchema, 404: ErrorBodySchema },
  }),
  list: defineRoute({
    method: 'GET',
    path: '/keys',
    auth: 'internal',
    summary: 'List the entries whose key starts with a prefix, in key order, a page at a time',
    query: KvListQuerySchema,
    responses: { 200: KvListSchema, 400: ErrorBodySchema },
  }),
} as const;
