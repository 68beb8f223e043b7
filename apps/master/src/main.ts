import { createLogger, deriveSigningKey, Discovery, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { MasterConfigSchema } from './config';
import { ImageStoreGateway } from './data-access/image-store-gateway';
import { TaskEventFeed } from './data-access/task-events';
import { TaskGateway } from './data-access/task-gateway';
import { Housekeeper, startHousekeeping } from './domain/housekeeper';
import { ImageService } from './domain/image-service';
import { TaskAdmin } from './domain/task-admin';

const capOrNone = (bytes: number): number | undefined => (bytes === 0 ? undefined : bytes);

runMain('master', async () => {
  const config = loadConfigOrExit('master', MasterConfigSchema, process.env);
  const logger = createLogger('master', config.LOG_LEVEL);
  const discovery = new Discovery({
    kvUrl: config.KV_URL,
    overrides: { taskdb: config.TASKDB_URL, storage: config.STORAGE_URL },
    token: config.INTERNAL_TOKEN,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  const taskdb = discovery.client('taskdb');
  const storage = discovery.client('storage');
  const tasks = new TaskGateway(taskdb);
  const store = new ImageStoreGateway(storage, {
    publicUrl: async () => config.STORAGE_PUBLIC_URL ?? (await discovery.resolve('storage')),
    signingKey: deriveSigningKey(config.INTERNAL_TOKEN, config.URL_SIGNING_KEY),
    sourceUploadTimeoutMs: config.BODY_TIMEOUT_MS + config.REQUEST_TIMEOUT_MS,
  });
  const images = new ImageService({
    tasks,
    store,
    leaseMs: config.LEASE_MS,
    claimRecheckMs: config.CLAIM_RECHECK_MS,
    signedUrlTtlMs: config.SIGNED_URL_TTL_MS,
    quotas: { perKey: capOrNone(config.QUOTA_BYTES_PER_KEY), anonymous: capOrNone(config.QUOTA_BYTES_ANONYMOUS) },
    maxImagePixels: config.MAX_IMAGE_PIXELS,
    followsTaskEvents: (): boolean => taskEvents.following,
  });
  // A task created or ended through any master wakes the calls waiting on this one. The feed
  // keeps to one taskdb instance; when that one cannot be reached, discovery skips it a while.
  let followed: string | undefined;
  const taskEvents: TaskEventFeed = new TaskEventFeed({
    resolve: async () => (followed = await discovery.resolve('taskdb')),
    onUnreachable: () => {
      if (followed !== undefined) discovery.markUnreachable('taskdb', followed);
    },
    token: config.INTERNAL_TOKEN,
    handlers: images,
    logger,
  });
  taskEvents.start();
  const retentionMs = config.RETENTION_HOURS * 3_600_000;
  const housekeeping = startHousekeeping(new Housekeeper({ tasks, store, logger, retentionMs }), config.HOUSEKEEPING_INTERVAL_MS, logger);
  const app = createApp({
    images,
    admin: new TaskAdmin({ tasks, store, retentionMs, images }),
    logger,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    dependencies: [taskdb, storage],
    tokens: { internal: config.INTERNAL_TOKEN, worker: config.WORKER_TOKEN },
  });
  await runService({ service: 'master', app, logger, config, onStop: [() => taskEvents.stop(), () => housekeeping.stop()] });
});
