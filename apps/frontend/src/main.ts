import { createLogger, Discovery, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { FrontendConfigSchema } from './config';

runMain('frontend', async () => {
  const config = loadConfigOrExit('frontend', FrontendConfigSchema, process.env);
  const logger = createLogger('frontend', config.LOG_LEVEL);
  const discovery = new Discovery({
    kvUrl: config.KV_URL,
    overrides: { master: config.MASTER_URL },
    timeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const app = createApp({
    master: discovery.client('master'),
    logger,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    refreshSeconds: config.PAGE_REFRESH_SECONDS,
  });
  // Listens, registers services/frontend in kv (renewed), and on SIGTERM unregisters and closes.
  await runService({ service: 'frontend', app, logger, config });
});
