import path from 'node:path';
import { createLogger, loadConfigOrExit, runMain, runService, serviceKey } from '@pixelmill/kit';
import { createApp } from './app';
import { KvConfigSchema } from './config';
import { KvRepository } from './data-access/kv-repository';

runMain('kv', async () => {
  const config = loadConfigOrExit('kv', KvConfigSchema, process.env);
  const logger = createLogger('kv', config.LOG_LEVEL);
  const repository = new KvRepository(path.join(config.DATA_DIR, 'kv.sqlite'));
  const app = createApp({ repository, logger, tokens: { internal: config.INTERNAL_TOKEN, worker: config.WORKER_TOKEN } });
  const server = await runService({ service: 'kv', app, logger, config, onStop: [() => repository.close()] });
  // kv is its own registry: everyone finds it from KV_URL; the entry makes listings complete.
  repository.set(serviceKey('kv'), config.ADVERTISE_URL ?? server.url);
});
