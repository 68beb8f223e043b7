import { pipeline } from 'node:stream/promises';
import type { Router } from 'express';
import { masterContract } from '@pixelmill/contracts';
import { hangUpSignal, mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { ImageService } from '../domain/image-service';

export function mountMasterRoutes(router: Router, images: ImageService, maxUploadBytes: number, tokens: ServiceTokens): void {
  mountContract(
    router,
    masterContract,
    {
      // The upload streams on to storage as it arrives (see ImageService.accept).
      newImage: async ({ query, headers, body }) => ({
        status: 202,
        body: await images.accept(body, {
          op: query.op,
          params: { width: query.width, height: query.height },
          owner: query.owner,
          idempotencyKey: headers['idempotency-key'],
        }),
      }),
      isReady: async ({ query }, _req, res) => ({
        status: 200,
        body: await images.status(query.id, query.owner, query.waitMs, hangUpSignal(res)),
      }),
      get: async ({ query }, _req, res) => {
        const result = await images.result(query.id, query.owner);
        res.status(200).set({ 'content-type': result.contentType, ...(result.size ? { 'content-length': result.size } : {}) });
        await pipeline(result.stream, res);
      },
      usage: async ({ query }) => ({ status: 200, body: await images.usage(query.owner) }),
      getWork: async ({ query }, _req, res) => {
        // A worker that hangs up stops its wait, so a claim is never handed to nobody.
        const gone = hangUpSignal(res);
        const work = await images.nextWork(query.waitMs, gone);
        if (work && gone.aborted) {
          // Claimed just as the worker hung up: give it back rather than let it wait out the lease.
          await images.released(work.id, work.leaseToken, 'the worker went away before it received the task');
          return;
        }
        return work ? { status: 200, body: work } : { status: 204, body: undefined };
      },
      workFinished: async ({ body }) => ({ status: 200, body: await images.finished(body.id, body.leaseToken, body.receipt) }),
      workFailed: async ({ body }) => ({ status: 200, body: await images.failed(body.id, body.leaseToken, body.reason) }),
      workReleased: async ({ body }) => ({ status: 200, body: await images.released(body.id, body.leaseToken, body.reason) }),
      heartbeat: async ({ body }) => ({ status: 200, body: await images.heartbeat(body.id, body.leaseToken) }),
    },
    { binaryLimit: maxUploadBytes, tokens },
  );
}
