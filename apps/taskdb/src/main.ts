import path from 'node:path';
import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { TaskRepository } from './data-access/task-repository';
import { TaskService } from './domain/task-service';

runMain('taskdb', async () => {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema, process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = new TaskRepository(path.join(config.DATA_DIR, 'tasks.sqlite'));
  const tasks = new TaskService(repository, { maxAttempts: config.MAX_ATTEMPTS });
  const app = createApp({ tasks, logger, ping: () => repository.ping() });
  await runService({ service: 'taskdb', app, logger, config, onStop: [() => repository.close()] });
});
