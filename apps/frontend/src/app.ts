import path from 'node:path';
import express, { type Express } from 'express';
import { createServiceApp, type ContractClient, type Logger } from '@pixelmill/kit';
import { MasterGateway } from './data-access/master-gateway';
import { ApiKeys } from './domain/api-keys';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './domain/image-upload';
import type { RateLimiter } from './domain/rate-limiter';
import { UploadQuota } from './domain/upload-quota';
import { createClientAccess } from './routes/client-access';
import { mountFrontendRoutes } from './routes/frontend-routes';
import { DEFAULT_STREAM_UPLOADS_FROM_BYTES } from './routes/upload-parser';
import { docsAssets } from './routes/docs-assets';
import { securityHeaders } from './routes/security-headers';
import { DOCS_ASSETS_PATH } from './views/docs-page';

/** The page's script and style; next to src/ and dist/ alike. */
const PUBLIC_DIR = path.join(__dirname, '..', 'public');

export interface FrontendAppDeps {
  /** A client of master, usually `discovery.client('master')` (which sends INTERNAL_TOKEN). */
  master: ContractClient;
  logger: Logger;
  maxUploadBytes: number;
  /** Raw uploads declaring more bytes than this stream on to master; 0 (all of them) by default. */
  streamUploadsFromBytes?: number;
  /** How large an image may declare itself in its header; 50 megapixels and 16384 px a side by default. */
  imageLimits?: ImageLimits;
  /** Keys that may use the API, each seeing only its own images; none (the default) leaves the API open. */
  apiKeys?: readonly string[];
  /** Counts uploads per client (its key, or its address without keys); none: no limit. */
  uploadLimiter?: RateLimiter;
  /** Proxies whose X-Forwarded-For is believed, counted from ours (Express's `trust proxy`); 0 by default. */
  trustProxyHops?: number;
  /** How often the status page reloads itself without JavaScript. */
  refreshSeconds?: number;
  /** How long a streamed upload may take on its way to master (the client sends it at its pace); the master client's timeout by default. */
  streamedUploadTimeoutMs?: number;
  /** INTERNAL_TOKEN: `/metrics` needs it when set, so the public door does not show its figures to anyone. */
  internalToken?: string;
}

export function createApp({
  master,
  logger,
  maxUploadBytes,
  streamUploadsFromBytes = DEFAULT_STREAM_UPLOADS_FROM_BYTES,
  imageLimits = DEFAULT_IMAGE_LIMITS,
  apiKeys = [],
  uploadLimiter,
  trustProxyHops = 0,
  refreshSeconds = 1,
  streamedUploadTimeoutMs,
  internalToken,
}: FrontendAppDeps): Express {
  const gateway = new MasterGateway(master, { streamedUploadTimeoutMs });
  const keys = new ApiKeys(apiKeys);
  // Master knows each owner's stored bytes and quota; asking it first spares reading an upload it would refuse.
  const uploadQuota = new UploadQuota((owner) => gateway.usage(owner));
  const access = createClientAccess({ apiKeys: keys, uploadLimiter, uploadQuota });
  const service = createServiceApp({
    service: 'frontend',
    logger,
    routes: (router) => {
      mountFrontendRoutes(router, {
        master: gateway,
        access,
        apiKeys: keys.enabled,
        maxUploadBytes,
        streamUploadsFromBytes,
        imageLimits,
        refreshSeconds,
      });
      router.use(DOCS_ASSETS_PATH, docsAssets());
      router.use(express.static(PUBLIC_DIR, { index: false }));
    },
    readiness: { master: () => gateway.ping() },
    // First, so the security headers are on every answer, /healthz and kit's own errors included.
    firstMiddleware: [securityHeaders()],
    // The frontend asks INTERNAL_TOKEN only of /metrics (and /authz, which tells whether it holds it).
    tokens: { internal: internalToken },
  });
  service.set('trust proxy', trustProxyHops);
  return service;
}
