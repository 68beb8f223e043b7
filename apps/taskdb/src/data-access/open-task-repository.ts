import path from 'node:path';
import { backoffDelay, sleep, type Logger } from '@pixelmill/kit';
import { isDatabaseUnavailable } from '@pixelmill/kit/postgres';
import type { TaskdbConfig } from '../config';
import { PostgresTaskRepository } from './postgres-task-repository';
import { SqliteTaskRepository } from './sqlite-task-repository';
import type { TaskRepository } from './task-repository';

const RETRY = { initialMs: 500, maxMs: 10_000 };

/**
 * PostgreSQL when DATABASE_URL is set, else the SQLite file under DATA_DIR. A PostgreSQL out of
 * reach at start is waited for (taskdb cannot answer anything without its tables), with a line
 * logged per try; any other failure (a wrong password, a bad schema) stops the start.
 */
export async function openTaskRepository(config: TaskdbConfig, logger: Logger): Promise<TaskRepository> {
  if (config.DATABASE_URL === undefined) {
    return new SqliteTaskRepository(path.join(config.DATA_DIR, 'tasks.sqlite'), config.SQLITE_SYNCHRONOUS);
  }
  const options = { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, poolSize: config.DATABASE_POOL_SIZE };
  for (let failures = 1; ; failures += 1) {
    try {
      return await PostgresTaskRepository.open(options);
    } catch (err) {
      if (!isDatabaseUnavailable(err)) throw err;
      const waitMs = backoffDelay(failures, RETRY);
      logger.warn(`PostgreSQL is out of reach (${(err as Error).message}); trying again in ${waitMs} ms`);
      await sleep(waitMs);
    }
  }
}
