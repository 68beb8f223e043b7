import type { Router } from 'express';
import { masterContract } from '@pixelmill/contracts';
import { mountContract } from '@pixelmill/kit';
import type { ImageService } from '../domain/image-service';

export function mountMasterRoutes(router: Router, images: ImageService, maxUploadBytes: number): void {
  mountContract(
    router,
    masterContract,
    {
      newImage: async ({ query, body }) => ({ status: 202, body: await images.accept(body, query.op) }),
      isReady: async ({ query }) => ({ status: 200, body: await images.status(query.id) }),
      get: async ({ query }) => {
        const result = await images.result(query.id);
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
      heartbeat: async ({ body }) => ({ status: 200, body: await images.heartbeat(body.id, body.leaseToken) }),
    },
    { binaryLimit: maxUploadBytes },
  );
}
