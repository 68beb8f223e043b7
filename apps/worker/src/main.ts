import { createLogger, loadConfigOrExit, onShutdown } from '@pixelmill/kit';
import { WorkerConfigSchema } from './config';
import { createWorker } from './worker';

/** Time left for logging and exiting after the worker's own shutdown deadline. */
const EXIT_MARGIN_MS = 2_000;

function main(): void {
  const config = loadConfigOrExit('worker', WorkerConfigSchema, process.env);
  const logger = createLogger('worker', config.LOG_LEVEL);
  const worker = createWorker(config, { logger });
  worker.start();
  logger.info(
    `worker started: ${config.WORKER_CONCURRENCY} loop(s), master at ${config.MASTER_URL ?? 'services/master in kv'}, ` +
      `storage at ${config.STORAGE_URL ?? 'services/storage in kv'}, kv at ${config.KV_URL}`,
  );
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, [
    async () => {
      if (!(await worker.stop(config.SHUTDOWN_TIMEOUT_MS))) {
        logger.warn(`tasks still in hand after ${config.SHUTDOWN_TIMEOUT_MS} ms; their leases will expire and others retry them`);
      }
    },
  ]);
}

try {
  main();
} catch (err) {
  process.stderr.write(`worker failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
