import path from 'node:path';
import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { DatabaseEnvSchema, openPostgres } from '@pixelmill/kit/postgres';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { PostgresEventBus } from './data-access/postgres-event-bus';
import { TaskRepository } from './data-access/task-repository';
import { TaskEventHub } from './domain/task-events';
import { TaskService } from './domain/task-service';

runMain('taskdb', async () => {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema.extend(DatabaseEnvSchema.shape), process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = new TaskRepository(path.join(config.DATA_DIR, 'tasks.sqlite'), config.SQLITE_SYNCHRONOUS);
  const events = new TaskEventHub();
  // On PostgreSQL every instance hears every instance's events, its own too; else its own feed its hub.
  const database = config.DATABASE_URL === undefined ? undefined : { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA };
  const pool = database && (await openPostgres({ ...database, poolSize: config.DATABASE_POOL_SIZE }));
  const bus = database && pool && new PostgresEventBus({ ...database, pool, hub: events, logger });
  await bus?.start();
  const tasks = new TaskService(repository, {
    maxAttempts: config.MAX_ATTEMPTS,
    attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
    retryBaseMs: config.RETRY_BASE_MS,
    retryMaxMs: config.RETRY_MAX_MS,
    events: bus ?? events,
  });
  const reaper = setInterval(() => {
    try {
      const reaped = tasks.reapExpired();
      if (reaped > 0) logger.info(`gave ${reaped} task(s) with an expired lease back to the queue`);
    } catch (err) {
      logger.error('could not reap expired leases', err);
    }
  }, config.REAP_INTERVAL_MS);
  const app = createApp({
    tasks,
    events,
    logger,
    ping: () => repository.ping(),
    tokens: { internal: config.INTERNAL_TOKEN },
  });
  // Before the server's close, which would otherwise wait out the masters' long polls.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => events.close());
  await runService({
    service: 'taskdb',
    app,
    logger,
    config,
    onStop: [() => clearInterval(reaper), () => bus?.stop(), () => pool?.end(), () => repository.close()],
  });
});
