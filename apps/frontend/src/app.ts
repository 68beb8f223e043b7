import path from 'node:path';
import express, { type Express } from 'express';
import { createServiceApp, type ContractClient, type Logger } from '@pixelmill/kit';
import { MasterGateway } from './data-access/master-gateway';
import { mountFrontendRoutes } from './routes/frontend-routes';

/** The page's script and style; next to src/ and dist/ alike. */
const PUBLIC_DIR = path.join(__dirname, '..', 'public');

export interface FrontendAppDeps {
  /** A client of master, usually `discovery.client('master')`. */
  master: ContractClient;
  logger: Logger;
  maxUploadBytes: number;
  /** How often the status page reloads itself without JavaScript. */
  refreshSeconds?: number;
}

export function createApp({ master, logger, maxUploadBytes, refreshSeconds = 1 }: FrontendAppDeps): Express {
  const gateway = new MasterGateway(master);
  return createServiceApp({
    service: 'frontend',
    logger,
    routes: (router) => {
      mountFrontendRoutes(router, { master: gateway, maxUploadBytes, refreshSeconds });
      router.use(
        express.static(PUBLIC_DIR, {
          index: false,
          setHeaders: (res) => res.setHeader('x-content-type-options', 'nosniff'),
        }),
      );
    },
    readiness: { master: () => gateway.ping() },
  });
}
