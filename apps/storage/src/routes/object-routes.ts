import type { Request, Router } from 'express';
import { detectImageType, ObjectParamsSchema, SignedQuerySchema, storageContract } from '@pixelmill/contracts';
import { AppError, mountContract, verifyObjectSignature, type ServiceTokens } from '@pixelmill/kit';
import type { FileStore } from '../data-access/file-store';

export interface ObjectRouteOptions {
  maxObjectBytes: number;
  tokens: ServiceTokens;
  /** Key of the signed URLs master hands to workers; without it only the internal token opens objects. */
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

export function mountObjectRoutes(router: Router, store: FileStore, options: ObjectRouteOptions): void {
  const { maxObjectBytes, tokens, signingKey } = options;
  const missing = (state: string, key: string) => new AppError('not_found', 404, `nothing stored under ${state}/${key}`);
  mountContract(
    router,
    storageContract,
    {
      put: async ({ params, body }, req) => {
        if (body.length === 0) throw new AppError('bad_request', 400, 'empty body: send the image bytes');
        const contentType = detectImageType(body);
        if (!contentType) {
          throw new AppError('unsupported_media_type', 415, 'the body is not a PNG, JPEG, BMP or GIF image');
        }
        const declared = req.get('content-type')?.split(';')[0]?.trim().toLowerCase();
        if (declared && declared !== contentType && declared !== 'application/octet-stream') {
          throw new AppError('unsupported_media_type', 415, `Content-Type ${declared} does not match the bytes (${contentType})`);
        }
        await store.put(params.state, params.key, body);
        return { status: 201, body: { key: params.key, state: params.state, size: body.length, contentType } };
      },
      get: async ({ params }) => {
        const file = await store.get(params.state, params.key);
        if (!file) throw missing(params.state, params.key);
        return { status: 200, body: file.bytes, headers: { 'content-type': file.contentType } };
      },
      head: async ({ params }, _req, res) => {
        const info = await store.stat(params.state, params.key);
        if (!info) {
          res.status(404).end();
          return;
        }
        res.set({ 'content-type': info.contentType, 'content-length': String(info.size) }).status(200).end();
      },
      delete: async ({ params }) => {
        if (!(await store.delete(params.state, params.key))) throw missing(params.state, params.key);
        return { status: 204, body: undefined };
      },
    },
    {
      binaryLimit: maxObjectBytes,
      tokens,
      grants: { get: signedFor('GET', signingKey), put: signedFor('POST', signingKey) },
    },
  );
}
