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
      getWork: async ({ query }, _req, res) => {
        // A worker that hangs up stops its wait, so a claim is never handed to nobody.
        const gone = new AbortController();
        res.once('close', () => {
          if (!res.writableFinished) gone.abort();
        });
        const work = await images.nextWork(query.waitMs, gone.signal);
        if (work && gone.signal.aborted) {
          // Claimed just as the worker hung up: give it back rather than let it wait out the lease.
          await images.released(work.id, work.leaseToken, 'the worker went away before it received the task');
          return;
        }
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
