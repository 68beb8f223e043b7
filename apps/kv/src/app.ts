import type { Express } from 'express';
import { createServiceApp, type Logger, type ServiceTokens } from '@pixelmill/kit';
import type { KvRepository } from './data-access/kv-repository';
import { mountKvRoutes } from './routes/kv-routes';

export interface KvAppDeps {
  repository: KvRepository;
  logger: Logger;
  tokens?: ServiceTokens;
}

export function createApp({ repository, logger, tokens = {} }: KvAppDeps): Express {
  return createServiceApp({
    service: 'kv',
    logger,
    routes: (router) => mountKvRoutes(router, repository, tokens),
    readiness: { database: () => repository.ping() },
    tokens,
  });
}
