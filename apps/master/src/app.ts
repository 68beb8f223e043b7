import type { Express } from 'express';
import { commonContract } from '@pixelmill/contracts';
import { createServiceApp, expectStatus, type ContractClient, type Logger } from '@pixelmill/kit';
import type { ImageService } from './domain/image-service';
import { mountMasterRoutes } from './routes/master-routes';

export interface MasterAppDeps {
  images: ImageService;
  logger: Logger;
  maxUploadBytes: number;
  /** Checked by /readyz. */
  dependencies: ContractClient[];
}

export function createApp({ images, logger, maxUploadBytes, dependencies }: MasterAppDeps): Express {
  return createServiceApp({
    service: 'master',
    logger,
    routes: (router) => mountMasterRoutes(router, images, maxUploadBytes),
    readiness: Object.fromEntries(
      dependencies.map((client) => [
        client.service,
        async () => expectStatus(await client.call(commonContract.health, {}), 200, client.service),
      ]),
    ),
  });
}
