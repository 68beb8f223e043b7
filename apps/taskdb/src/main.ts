import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { openTaskRepository } from './data-access/open-task-repository';
import { LeaseReaper } from './domain/lease-reaper';
import { TaskService } from './domain/task-service';

runMain('taskdb', async () => {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema, process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = await openTaskRepository(config, logger);
  const tasks = new TaskService(repository, {
    maxAttempts: config.MAX_ATTEMPTS,
    attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
    retryBaseMs: config.RETRY_BASE_MS,
    retryMaxMs: config.RETRY_MAX_MS,
  });
  const reaper = new LeaseReaper(tasks, logger, config.REAP_INTERVAL_MS);
  reaper.start();
  const app = createApp({
    tasks,
    logger,
    ping: () => repository.ping(),
    tokens: { internal: config.INTERNAL_TOKEN },
  });
  await runService({
    service: 'taskdb',
    app,
    logger,
    config,
    onStop: [() => reaper.stop(), () => repository.close()],
  });
});
