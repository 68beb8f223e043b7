import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestSchema } from '@pixelmill/kit/testing';
import { PostgresTaskRepository } from '../../src/data-access/postgres-task-repository';
import { SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import type { TaskRepository } from '../../src/data-access/task-repository';

export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

/** An empty database of one backend for one test: a temp folder, or a PostgreSQL schema of its own. */
export interface TestDatabase {
  backend: Backend;
  /**
   * A repository on the database; each call opens another (a restart, or a second instance). The
   * repositories opened are closed by `drop`.
   */
  open(): Promise<TaskRepository>;
  /** Closes what `open` opened and removes the database. */
  drop(): Promise<void>;
}

/** Connections per PostgreSQL repository in tests: the machine's server is shared by many runs. */
const TEST_POOL_SIZE = 4;

export async function createTestDatabase(backend: Backend, poolSize = TEST_POOL_SIZE): Promise<TestDatabase> {
  const opened: TaskRepository[] = [];
  const track = (repository: TaskRepository): TaskRepository => {
    opened.push(repository);
    return repository;
  };
  const closeAll = async () => {
    await Promise.all(opened.splice(0).map((repository) => repository.close().catch(() => undefined)));
  };
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-'));
    return {
      backend,
      open: async () => track(new SqliteTaskRepository(path.join(dir, 'tasks.sqlite'))),
      drop: async () => {
        await closeAll();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = await createTestSchema('taskdb');
  return {
    backend,
    open: async () => track(await PostgresTaskRepository.open({ url: schema.url, schema: schema.schema, poolSize })),
    drop: async () => {
      await closeAll();
      await schema.drop();
    },
  };
}
