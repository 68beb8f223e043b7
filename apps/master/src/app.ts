import type { Express } from 'express';
import { commonContract } from '@pixelmill/contracts';
import { createServiceApp, expectStatus, type ContractClient, type Logger, type ServiceTokens } from '@pixelmill/kit';
import type { ImageService } from './domain/image-service';
import { mountMasterRoutes } from './routes/master-routes';

export interface MasterAppDeps {
  images: ImageService;
  logger: Logger;
  maxUploadBytes: number;
  /** Checked by /readyz. */
  dependencies: ContractClient[];
  tokens?: ServiceTokens;
}

export function createApp({ images, logger, maxUploadBytes, dependencies, tokens = {} }: MasterAppDeps): Express {
  return createServiceApp({
    service: 'master',
    logger,
    routes: (router) => mountMasterRoutes(router, images, maxUploadBytes, tokens),
    readiness: Object.fromEntries(
      dependencies.map((client) => [
        client.service,
        async () => expectStatus(await client.call(commonContract.health, {}), 200, client.service),
      ]),
    ),
  });
}
