import { createLogger, Discovery, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { FrontendConfigSchema, uploadRatePerMinute } from './config';
import { createUploadRateLimiter } from './data-access/shared-rate-limiter';

runMain('frontend', async () => {
  const config = loadConfigOrExit('frontend', FrontendConfigSchema, process.env);
  const logger = createLogger('frontend', config.LOG_LEVEL);
  const discovery = new Discovery({
    kvUrl: config.KV_URL,
    overrides: { master: config.MASTER_URL },
    // Sent to kv and, through discovery.client, to master.
    token: config.INTERNAL_TOKEN,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const ratePerMinute = uploadRatePerMinute(config);
  const uploadLimiter = createUploadRateLimiter({
    ratePerMinute,
    burst: config.UPLOAD_BURST,
    redisUrl: config.REDIS_URL,
    databaseUrl: config.DATABASE_URL,
    databaseSchema: config.DATABASE_SCHEMA,
    databasePoolSize: config.DATABASE_POOL_SIZE,
    prefix: config.RATE_LIMIT_PREFIX,
    logger,
  });
  const app = createApp({
    master: discovery.client('master'),
    logger,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    streamUploadsFromBytes: config.STREAM_UPLOADS_FROM_BYTES,
    imageLimits: { maxPixels: config.MAX_IMAGE_PIXELS, maxSide: config.MAX_IMAGE_SIDE },
    apiKeys: config.API_KEYS,
    uploadLimiter,
    trustProxyHops: config.TRUST_PROXY_HOPS,
    refreshSeconds: config.PAGE_REFRESH_SECONDS,
    // A streamed upload arrives at the client's pace, which the server allows BODY_TIMEOUT_MS for.
    streamedUploadTimeoutMs: config.BODY_TIMEOUT_MS + config.REQUEST_TIMEOUT_MS,
    internalToken: config.INTERNAL_TOKEN,
  });
  logger.info(
    ratePerMinute === 0
      ? `no upload rate limit${config.UPLOAD_RATE_PER_MINUTE === undefined ? ' (only this machine can reach the frontend; UPLOAD_RATE_PER_MINUTE sets one)' : ''}`
      : `upload rate limit: ${ratePerMinute} per minute per client, bursts of ${config.UPLOAD_BURST}`,
  );
  if (config.API_KEYS) logger.info(`API keys required (${config.API_KEYS.length} configured)`);
  // Listens, registers services/frontend/<instance> in kv (renewed), and on SIGTERM unregisters and closes.
  await runService({
    service: 'frontend',
    app,
    logger,
    config,
    maxConnectionsPerClient: config.MAX_CONNECTIONS_PER_CLIENT,
    onStop: [() => uploadLimiter?.close?.()],
  });
});
