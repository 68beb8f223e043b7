import { createLogger, loadConfigOrExit, onShutdown, runMain } from '@pixelmill/kit';
import { WorkerConfigSchema } from './config';
import { createWorker } from './worker';

/** Time left for logging and exiting after the worker's own shutdown deadline. */
const EXIT_MARGIN_MS = 2_000;

runMain('worker', async () => {
  const config = loadConfigOrExit('worker', WorkerConfigSchema, process.env);
  const logger = createLogger('worker', config.LOG_LEVEL);
  const worker = createWorker(config, { logger });
  worker.start();
  const master = config.MASTER_URL ?? 'services/master in kv';
  const storage = config.STORAGE_URL ?? 'services/storage in kv';
  logger.info(
    `worker started: ${config.WORKER_CONCURRENCY} loop(s), master at ${master}, storage at ${storage}, kv at ${config.KV_URL}`,
  );
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, [
    async () => {
      if (!(await worker.stop(config.SHUTDOWN_TIMEOUT_MS))) {
        logger.warn(
          `tasks still in hand after ${config.SHUTDOWN_TIMEOUT_MS} ms; their leases will expire and others retry them`,
        );
      }
    },
  ]);
});
