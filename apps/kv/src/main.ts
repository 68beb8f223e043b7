import path from 'node:path';
import { createLogger, loadConfigOrExit, runMain, runService } from '@pixelmill/kit';
import { createApp } from './app';
import { KvConfigSchema, type KvConfig } from './config';
import type { KvRepository } from './data-access/kv-repository';
import { PostgresKvRepository } from './data-access/postgres-kv-repository';
import { SqliteKvRepository } from './data-access/sqlite-kv-repository';

/** PostgreSQL when DATABASE_URL is set (several kv instances may share it), else the SQLite file. */
const openRepository = (config: KvConfig): Promise<KvRepository> | KvRepository =>
  config.DATABASE_URL === undefined
    ? new SqliteKvRepository(path.join(config.DATA_DIR, 'kv.sqlite'))
    : PostgresKvRepository.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, poolSize: config.DATABASE_POOL_SIZE });

runMain('kv', async () => {
  const config = loadConfigOrExit('kv', KvConfigSchema, process.env);
  const logger = createLogger('kv', config.LOG_LEVEL);
  const repository = await openRepository(config);
  logger.info(config.DATABASE_URL === undefined ? 'state in SQLite' : `state in PostgreSQL, schema ${config.DATABASE_SCHEMA}`);
  const app = createApp({ repository, logger, tokens: { internal: config.INTERNAL_TOKEN, worker: config.WORKER_TOKEN } });
  // Everyone finds kv from KV_URL; it registers with itself too, so listings of services/ are complete.
  await runService({ service: 'kv', app, logger, config, onStop: [() => repository.close()] });
});
