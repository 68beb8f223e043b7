import type { Express } from 'express';
import { createServiceApp, type Logger } from '@pixelmill/kit';
import type { FileStore } from './data-access/file-store';
import { mountObjectRoutes } from './routes/object-routes';

export interface StorageAppDeps {
  store: FileStore;
  logger: Logger;
  maxObjectBytes: number;
}

export function createApp({ store, logger, maxObjectBytes }: StorageAppDeps): Express {
  return createServiceApp({
    service: 'storage',
    logger,
    routes: (router) => mountObjectRoutes(router, store, maxObjectBytes),
    readiness: { disk: () => store.ping() },
  });
}
