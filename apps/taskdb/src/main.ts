import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { openPostgres } from '@pixelmill/kit/postgres';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { openTaskRepository } from './data-access/open-task-repository';
import { PostgresEventBus } from './data-access/postgres-event-bus';
import { LeaseReaper } from './domain/lease-reaper';
import { TaskEventHub } from './domain/task-events';
import { TaskService } from './domain/task-service';

/** Connections of the event bus's own pool: notifications are small and few at a time. */
const EVENT_BUS_POOL_SIZE = 2;

runMain('taskdb', async () => {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema, process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = await openTaskRepository(config, logger);
  const events = new TaskEventHub();
  // On PostgreSQL every instance hears every instance's events, its own too; else its own feed its hub.
  const database = config.DATABASE_URL === undefined ? undefined : { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA };
  const pool = database && (await openPostgres({ ...database, poolSize: EVENT_BUS_POOL_SIZE }));
  const bus = database && pool && new PostgresEventBus({ ...database, pool, hub: events, logger });
  await bus?.start();
  const tasks = new TaskService(repository, {
    maxAttempts: config.MAX_ATTEMPTS,
    attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
    retryBaseMs: config.RETRY_BASE_MS,
    retryMaxMs: config.RETRY_MAX_MS,
    events: bus ?? events,
  });
  const reaper = new LeaseReaper(tasks, logger, config.REAP_INTERVAL_MS);
  reaper.start();
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
    onStop: [() => reaper.stop(), () => bus?.stop(), () => pool?.end(), () => repository.close()],
  });
});
