import type { Express } from 'express';
import { createServiceApp, serviceReadiness, type ContractClient, type Logger, type ServiceTokens } from '@pixelmill/kit';
import type { ImageService } from './domain/image-service';
import type { TaskAdmin } from './domain/task-admin';
import { mountAdminRoutes } from './routes/admin-routes';
import { mountMasterRoutes } from './routes/master-routes';

export interface MasterAppDeps {
  images: ImageService;
  /** The operators' admin routes. */
  admin: TaskAdmin;
  logger: Logger;
  maxUploadBytes: number;
  /** Checked by /readyz: each must answer, and accept the token it is given. */
  dependencies: ContractClient[];
  tokens?: ServiceTokens;
}

export function createApp({ images, admin, logger, maxUploadBytes, dependencies, tokens = {} }: MasterAppDeps): Express {
  return createServiceApp({
    service: 'master',
    logger,
    metrics: images.metrics.registry,
    routes: (router) => {
      mountMasterRoutes(router, images, maxUploadBytes, tokens);
      mountAdminRoutes(router, admin, tokens);
    },
    readiness: Object.fromEntries(dependencies.map((client) => [client.service, () => serviceReadiness(client)])),
    tokens,
  });
}
