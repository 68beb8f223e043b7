import { createLogger, deriveSigningKey, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { StorageConfigSchema } from './config';
import { FileStore } from './data-access/file-store';

runMain('storage', async () => {
  const config = loadConfigOrExit('storage', StorageConfigSchema, process.env);
  const logger = createLogger('storage', config.LOG_LEVEL);
  const store = new FileStore(config.DATA_DIR);
  const app = createApp({
    store,
    logger,
    maxObjectBytes: config.MAX_OBJECT_BYTES,
    tokens: { internal: config.INTERNAL_TOKEN },
    signingKey: deriveSigningKey(config.INTERNAL_TOKEN, config.URL_SIGNING_KEY),
  });
  await runService({ service: 'storage', app, logger, config, onStop: [() => store.close()] });
});
