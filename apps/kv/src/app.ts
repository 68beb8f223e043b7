import type { Express } from 'express';
import { createServiceApp, type Logger } from '@pixelmill/kit';
import type { KvRepository } from './data-access/kv-repository';
import { mountKvRoutes } from './routes/kv-routes';

export interface KvAppDeps {
  repository: KvRepository;
  logger: Logger;
}

export function createApp({ repository, logger }: KvAppDeps): Express {
  return createServiceApp({
    service: 'kv',
    logger,
    routes: (router) => mountKvRoutes(router, repository),
    readiness: { database: async () => repository.ping() },
  });
}
