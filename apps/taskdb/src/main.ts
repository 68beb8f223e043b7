import path from 'node:path';
import { createLogger, Discovery, listen, loadConfigOrExit, onShutdown, registerService } from '@pixelmill/kit';
import { createApp } from './app';
import { TaskdbConfigSchema } from './config';
import { TaskRepository } from './data-access/task-repository';
import { TaskService } from './domain/task-service';

async function main(): Promise<void> {
  const config = loadConfigOrExit('taskdb', TaskdbConfigSchema, process.env);
  const logger = createLogger('taskdb', config.LOG_LEVEL);
  const repository = new TaskRepository(path.join(config.DATA_DIR, 'tasks.sqlite'));
  const tasks = new TaskService(repository, { maxAttempts: config.MAX_ATTEMPTS });
  const server = await listen(createApp({ tasks, logger, ping: () => repository.ping() }), config.PORT, config.HOST);
  const discovery = new Discovery({ kvUrl: config.KV_URL });
  const registration = registerService(discovery.kv, 'taskdb', config.ADVERTISE_URL ?? server.url, {
    intervalMs: config.REGISTER_INTERVAL_MS,
    logger,
  });
  logger.info(`taskdb listening on ${server.url}`);
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [() => registration.stop(), () => server.close(), () => repository.close()]);
}

main().catch((err: unknown) => {
  process.stderr.write(`taskdb failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
