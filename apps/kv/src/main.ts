import path from 'node:path';
import { createLogger, listen, loadConfigOrExit, onShutdown, serviceKey } from '@pixelmill/kit';
import { createApp } from './app';
import { KvConfigSchema } from './config';
import { KvRepository } from './data-access/kv-repository';

async function main(): Promise<void> {
  const config = loadConfigOrExit('kv', KvConfigSchema, process.env);
  const logger = createLogger('kv', config.LOG_LEVEL);
  const repository = new KvRepository(path.join(config.DATA_DIR, 'kv.sqlite'));
  const server = await listen(createApp({ repository, logger }), config.PORT, config.HOST);
  const url = config.ADVERTISE_URL ?? server.url;
  // kv is its own registry: its address is known to everyone from KV_URL, recorded here for listings.
  repository.set(serviceKey('kv'), url);
  logger.info(`kv listening on ${server.url}`);
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [() => server.close(), () => repository.close()]);
}

main().catch((err: unknown) => {
  process.stderr.write(`kv failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
