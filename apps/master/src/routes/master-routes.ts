import type { Router } from 'express';
import { masterContract } from '@pixelmill/contracts';
import { mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { ImageService } from '../domain/image-service';

export function mountMasterRoutes(router: Router, images: ImageService, maxUploadBytes: number, tokens: ServiceTokens): void {
  mountContract(
    router,
    masterContract,
    {
      newImage: async ({ query, headers, body }) => ({
        status: 202,
        body: await images.accept(body, { op: query.op, owner: query.owner, idempotencyKey: headers['idempotency-key'] }),
      }),
      isReady: async ({ query }) => ({ status: 200, body: await images.status(query.id, query.owner) }),
      get: async ({ query }) => {
        const result = await images.result(query.id, query.owner);
        return { status: 200, body: result.bytes, headers: { 'content-type': result.contentType } };
      },
      getWork: async ({ query }, req) => {
        // A worker that hangs up stops its wait, so a claim is never handed to nobody.
        const gone = new AbortController();
        req.once('close', () => gone.abort());
        const work = await images.nextWork(query.waitMs, gone.signal);
        return work ? { status: 200, body: work } : { status: 204, body: undefined };
      },
      workFinished: async ({ body }) => ({ status: 200, body: await images.finished(body.id, body.leaseToken) }),
      workFailed: async ({ body }) => ({ status: 200, body: await images.failed(body.id, body.leaseToken, body.reason) }),
      workReleased: async ({ body }) => ({ status: 200, body: await images.released(body.id, body.leaseToken, body.reason) }),
      heartbeat: async ({ body }) => ({ status: 200, body: await images.heartbeat(body.id, body.leaseToken) }),
    },
    { binaryLimit: maxUploadBytes, tokens },
  );
}
