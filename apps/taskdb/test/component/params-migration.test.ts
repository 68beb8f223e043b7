import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrateSqlite } from '@pixelmill/kit';
import { migratePostgres, openPostgres } from '@pixelmill/kit/postgres';
import { createTestSchema } from '@pixelmill/kit/testing';
import { POSTGRES_TASK_MIGRATIONS, PostgresTaskRepository } from '../../src/data-access/postgres-task-repository';
import { SQLITE_TASK_MIGRATIONS, SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import type { TaskRepository } from '../../src/data-access/task-repository';
import { TaskService } from '../../src/domain/task-service';
import { BACKENDS, type Backend } from '../support/test-databases';

const POLICY = { maxAttempts: 3, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };

/** The schema versions before the one that added the operation's parameters. */
const before = (migrations: readonly string[]): readonly string[] =>
  migrations.slice(
    0,
    migrations.findIndex((migration) => migration.includes('ADD COLUMN params')),
  );

/** Two tasks as the version before wrote them: one waiting, one in progress (its lease in task_leases). */
const OLD_ROWS = (waiting: string, running: string) => [
  `INSERT INTO tasks (id, op, content_type, state, attempt, created_at, updated_at, available_at, source_bytes, width, height)
   VALUES ('${waiting}', 'rotate-90', 'image/png', 'not_started', 0, 1, 1, 0, 10, 3, 2)`,
  `INSERT INTO tasks (id, op, content_type, state, attempt, lease_token, lease_expires_at, attempt_deadline, created_at, updated_at,
     available_at, source_bytes)
   VALUES ('${running}', 'invert', 'image/png', 'in_progress', 1, '${randomUUID()}', 4102444800000, 4102444800000, 1, 1, 0, 10)`,
  `INSERT INTO task_leases (task_id, attempt, lease_token, granted_at, expires_at)
   SELECT id, attempt, lease_token, 1, lease_expires_at FROM tasks WHERE id = '${running}'`,
];

interface OldDatabase {
  /** Opens the database with this version of taskdb, which migrates it. */
  open(): Promise<TaskRepository>;
  drop(): Promise<void>;
}

/** A database at the schema version before the parameters, holding the tasks of OLD_ROWS. */
async function oldDatabase(backend: Backend, waiting: string, running: string): Promise<OldDatabase> {
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-'));
    const file = path.join(dir, 'tasks.sqlite');
    const db = new Database(file);
    migrateSqlite(db, before(SQLITE_TASK_MIGRATIONS));
    for (const statement of OLD_ROWS(waiting, running)) db.exec(statement);
    db.close();
    let repository: SqliteTaskRepository | undefined;
    return {
      open: async () => (repository = new SqliteTaskRepository(file)),
      drop: async () => {
        await repository?.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = await createTestSchema('taskdb_params');
  const pool = await openPostgres({ url: schema.url, schema: schema.schema, poolSize: 1 });
  try {
    await migratePostgres(pool, schema.schema, 'taskdb', before(POSTGRES_TASK_MIGRATIONS));
    for (const statement of OLD_ROWS(waiting, running)) await pool.query(statement);
  } finally {
    await pool.end();
  }
  let repository: PostgresTaskRepository | undefined;
  return {
    open: async () => (repository = await PostgresTaskRepository.open({ url: schema.url, schema: schema.schema, poolSize: 2 })),
    drop: async () => {
      await repository?.close();
      await schema.drop();
    },
  };
}

describe.each(BACKENDS)('the parameters column on %s', (backend) => {
  it('when a database from before the parameters is opened, then it is migrated, its tasks keep working, and new tasks keep their parameters', async () => {
    const [waiting, running] = [randomUUID(), randomUUID()];
    expect(before(backend === 'sqlite' ? SQLITE_TASK_MIGRATIONS : POSTGRES_TASK_MIGRATIONS).length).toBeGreaterThan(0);
    const database = await oldDatabase(backend, waiting, running);
    try {
      const tasks = new TaskService(await database.open(), POLICY);

      expect(await tasks.get(waiting)).toMatchObject({ id: waiting, op: 'rotate-90', params: null, width: 3, height: 2 });
      const held = await tasks.get(running);
      expect(held).toMatchObject({ state: 'in_progress', params: null });
      const claimed = await tasks.claim(30_000);
      expect(claimed).toMatchObject({ id: waiting, params: null });
      await tasks.changeState(waiting, { to: 'finished', leaseToken: claimed!.leaseToken, resultBytes: 5 });
      expect((await tasks.get(waiting)).state).toBe('finished');

      const id = randomUUID();
      await tasks.create({ id, op: 'resize', params: { width: 800 }, contentType: 'image/png', sourceBytes: 10 });
      expect(await tasks.get(id)).toMatchObject({ op: 'resize', params: { width: 800 } });
      expect(await tasks.claim(30_000)).toMatchObject({ id, params: { width: 800 } });
    } finally {
      await database.drop();
    }
  });
});
