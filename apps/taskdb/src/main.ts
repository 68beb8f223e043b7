import path from 'node:path';
import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { TaskRepository } from './data-access/task-repository';
import { TaskService } from './domain/task-service';

runMain('taskdb', async () => {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema, process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = new TaskRepository(path.join(config.DATA_DIR, 'tasks.sqlite'), config.SQLITE_SYNCHRONOUS);
  const tasks = new TaskService(repository, {
    maxAttempts: config.MAX_ATTEMPTS,
    attemptTimeoutMs: config.ATTEMPT_TIMEOUT_MS,
    retryBaseMs: config.RETRY_BASE_MS,
    retryMaxMs: config.RETRY_MAX_MS,
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
    logger,
    ping: () => repository.ping(),
    tokens: { internal: config.INTERNAL_TOKEN },
  });
  await runService({
    service: 'taskdb',
    app,
    logger,
    config,
    onStop: [() => clearInterval(reaper), () => repository.close()],
  });
});
