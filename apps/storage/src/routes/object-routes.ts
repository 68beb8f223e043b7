import { pipeline } from 'node:stream/promises';
import type { Request, Router } from 'express';
import { detectImageType, ObjectParamsSchema, SignedQuerySchema, storageContract, type ImageType } from '@pixelmill/contracts';
import { AppError, issueReceipt, mountContract, verifyObjectSignature, type ServiceTokens } from '@pixelmill/kit';
import { EmptyBodyError, ObjectExistsError, StreamLimitError, type ObjectStore } from '../data-access/object-store';

export interface ObjectRouteOptions {
  maxObjectBytes: number;
  tokens: ServiceTokens;
  /**
   * Key of the signed URLs master hands to workers, and of the receipts of stored results; without
   * it only the internal token opens objects, and results get no receipt (there is nothing to sign
   * with: master then reads each result back to check it).
   */
  signingKey?: string;
}

/** A signed URL opens one method on one object until it expires: the signature names all four. */
const signedFor =
  (method: 'GET' | 'POST', signingKey: string | undefined) =>
  (req: Request): boolean => {
    const params = ObjectParamsSchema.safeParse(req.params);
    const query = SignedQuerySchema.safeParse(req.query);
    if (!params.success || !query.success) return false;
    return verifyObjectSignature({ method, ...params.data, ...query.data }, signingKey);
  };

/** The most bytes this upload may have: the store's limit, or less when its (signed) URL says so. */
function uploadLimit(req: Request, maxObjectBytes: number): number {
  const query = SignedQuerySchema.safeParse(req.query);
  const bound = query.success ? query.data.maxBytes : undefined;
  return bound === undefined ? maxObjectBytes : Math.min(bound, maxObjectBytes);
}

const tooLarge = (limit: number) => new AppError('payload_too_large', 413, `the body is larger than the limit of ${limit} bytes`);

/** `bytes=<first>-<last>` or `bytes=<first>-`; anything else (several ranges, suffixes) is not a range we serve. */
function byteRange(header: string | undefined): { start: number; end?: number } | undefined {
  const match = header === undefined ? null : /^bytes=(\d{1,15})-(\d{0,15})$/.exec(header.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = match[2] === '' ? undefined : Number(match[2]);
  return end === undefined || end >= start ? { start, end } : undefined;
}

export function mountObjectRoutes(router: Router, store: ObjectStore, options: ObjectRouteOptions): void {
  const { maxObjectBytes, tokens, signingKey } = options;
  const missing = (state: string, key: string) => new AppError('not_found', 404, `nothing stored under ${state}/${key}`);
  mountContract(
    router,
    storageContract,
    {
      // The body streams to the store as it arrives: memory stays small whatever the image's size.
      put: async ({ params, body }) => {
        const declared = body.contentType?.split(';')[0]?.trim().toLowerCase();
        const check = (head: Buffer): ImageType => {
          const contentType = detectImageType(head);
          if (!contentType) {
            throw new AppError('unsupported_media_type', 415, 'the body is not a PNG, JPEG, BMP or GIF image');
          }
          if (declared && declared !== contentType && declared !== 'application/octet-stream') {
            throw new AppError('unsupported_media_type', 415, `Content-Type ${declared} does not match the bytes (${contentType})`);
          }
          return contentType;
        };
        const { limit } = body;
        // A result's receipt spares master a read back of it; a source is put by master itself, which knows its bytes.
        const receiptKey = params.state === 'finished' ? signingKey : undefined;
        try {
          const { size, contentType, digest } = await store.putStream(params.state, params.key, body.stream, {
            maxBytes: limit,
            check,
            digest: receiptKey !== undefined,
          });
          const stored = { key: params.key, state: params.state, size, contentType };
          if (receiptKey === undefined || digest === undefined) return { status: 201, body: stored };
          const receipt = issueReceipt({ state: params.state, key: params.key, size, sha256: digest.sha256, ...digest.facts }, receiptKey);
          return { status: 201, body: { ...stored, receipt } };
        } catch (err) {
          // The rest of a refused body is not read: the error answer closes the connection.
          if (err instanceof StreamLimitError) throw tooLarge(limit);
          if (err instanceof EmptyBodyError) throw new AppError('bad_request', 400, 'empty body: send the image bytes');
          if (err instanceof ObjectExistsError) {
            throw new AppError('conflict', 409, `${err.message}; stored objects are never replaced`);
          }
          throw err;
        }
      },
      get: async ({ params, headers }, _req, res) => {
        const file = await store.open(params.state, params.key, byteRange(headers.range));
        if (!file) throw missing(params.state, params.key);
        if (file.range) {
          const { start, end } = file.range;
          res.status(206).set({
            'content-type': file.contentType,
            'content-length': String(end - start + 1),
            'content-range': `bytes ${start}-${end}/${file.size}`,
          });
        } else {
          res.status(200).set({ 'content-type': file.contentType, 'content-length': String(file.size) });
        }
        await pipeline(file.stream, res);
      },
      head: async ({ params }, _req, res) => {
        const info = await store.stat(params.state, params.key);
        if (!info) {
          res.status(404).end();
          return;
        }
        res
          .set({ 'content-type': info.contentType, 'content-length': String(info.size) })
          .status(200)
          .end();
      },
      delete: async ({ params }) => {
        if (!(await store.delete(params.state, params.key))) throw missing(params.state, params.key);
        return { status: 204, body: undefined };
      },
      deleteMany: async ({ body }) => ({ status: 200, body: { deleted: await store.deleteMany(body.objects) } }),
    },
    {
      binaryLimit: maxObjectBytes,
      // A signed URL may lower the limit (the result of a small image cannot be large).
      streamLimits: { put: (req) => uploadLimit(req, maxObjectBytes) },
      tokens,
      grants: { get: signedFor('GET', signingKey), put: signedFor('POST', signingKey) },
    },
  );
}
