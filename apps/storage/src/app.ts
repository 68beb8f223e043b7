import type { Express } from 'express';
import { createServiceApp, type Logger, type ServiceTokens } from '@pixelmill/kit';
import type { ObjectStore } from './data-access/object-store';
import { mountObjectRoutes } from './routes/object-routes';

export interface StorageAppDeps {
  store: ObjectStore;
  logger: Logger;
  maxObjectBytes: number;
  tokens?: ServiceTokens;
  signingKey?: string;
}

export function createApp({ store, logger, maxObjectBytes, tokens = {}, signingKey }: StorageAppDeps): Express {
  return createServiceApp({
    service: 'storage',
    logger,
    routes: (router) => mountObjectRoutes(router, store, { maxObjectBytes, tokens, signingKey }),
    readiness: { [store.kind === 's3' ? 'bucket' : 'disk']: () => store.ping() },
    tokens,
  });
}
