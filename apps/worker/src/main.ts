import { createLogger, loadConfigOrExit, onShutdown, runMain } from '@pixelmill/kit';
import { WorkerConfigSchema } from './config';
import { RELEASE_GRACE_MS } from './loop/work-loop';
import { startWorker } from './worker';

/** Time left for giving tasks back, logging and exiting after the worker's own shutdown deadline. */
const EXIT_MARGIN_MS = RELEASE_GRACE_MS + 2_000;

runMain('worker', async () => {
  const config = loadConfigOrExit('worker', WorkerConfigSchema, process.env);
  const logger = createLogger('worker', config.LOG_LEVEL);
  const worker = await startWorker(config, { logger });
  const master = config.MASTER_URL ?? 'services/master in kv';
  logger.info(
    `worker started: ${config.WORKER_CONCURRENCY} transform thread(s), ${config.WORKER_MEMORY_MB} MB for images, ` +
      `master at ${master}, kv at ${config.KV_URL}` +
      (config.WORKER_TOKEN ? ', with WORKER_TOKEN' : ', without WORKER_TOKEN') +
      (worker.statusUrl ? `; metrics and health on ${worker.statusUrl}` : ''),
  );
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, [
    async () => {
      if (!(await worker.stop(config.SHUTDOWN_TIMEOUT_MS))) {
        logger.warn(`tasks not done within ${config.SHUTDOWN_TIMEOUT_MS} ms were given back to master to be retried`);
      }
    },
  ]);
});
