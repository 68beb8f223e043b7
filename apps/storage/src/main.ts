import { createLogger, deriveSigningKey, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { StorageConfigSchema } from './config';
import { openObjectStore } from './data-access/open-object-store';

// The AWS SDK warns once, on stderr outside the JSON log, that its releases from 2027 need Node 22;
// its documented switch turns that off unless the environment says otherwise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

runMain('storage', async () => {
  const config = loadConfigOrExit('storage', StorageConfigSchema, process.env);
  const logger = createLogger('storage', config.LOG_LEVEL);
  const store = openObjectStore(config);
  logger.info(
    config.S3_BUCKET === undefined
      ? `objects in the folder ${config.DATA_DIR}`
      : `objects in the bucket ${config.S3_BUCKET} at ${config.S3_ENDPOINT ?? 'AWS'}`,
  );
  // Not fatal, and not waited for (an endpoint out of reach takes its connect timeouts): /readyz
  // keeps saying so, and storage serves as soon as the store answers.
  void store.ping().catch((err: unknown) => logger.warn(`the object store is not ready: ${(err as Error).message}`));
  const app = createApp({
    store,
    logger,
    maxObjectBytes: config.MAX_OBJECT_BYTES,
    tokens: { internal: config.INTERNAL_TOKEN },
    signingKey: deriveSigningKey(config.INTERNAL_TOKEN, config.URL_SIGNING_KEY),
  });
  await runService({ service: 'storage', app, logger, config, onStop: [() => store.close()] });
});
