import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, listen } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import { TaskService } from '../../src/domain/task-service';

const POLICY = { maxAttempts: 3, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };

describe('taskdb storage of state', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('when a database of the first schema version is opened, then it is migrated and its tasks kept', async () => {
    const file = path.join(dir, 'tasks.sqlite');
    const old = new Database(file);
    old.exec(`CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, op TEXT NOT NULL,
      content_type TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, error TEXT, lease_token TEXT,
      lease_expires_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
    const id = randomUUID();
    old
      .prepare(
        `INSERT INTO tasks (id, op, content_type, state, created_at, updated_at) VALUES (?, 'invert', 'image/png', 'not_started', 1, 1)`,
      )
      .run(id);
    old.pragma('user_version = 1');
    old.close();

    const repository = new SqliteTaskRepository(file);
    const tasks = new TaskService(repository, POLICY);
    expect(await tasks.get(id)).toMatchObject({ id, state: 'not_started', owner: null });
    expect((await tasks.claim(30_000))?.id).toBe(id);
    await repository.close();
  });

  it('keeps the journal in WAL mode with full synchronous commits unless told otherwise', async () => {
    const synchronousOf = (repository: SqliteTaskRepository): unknown =>
      (repository as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    const full = new SqliteTaskRepository(path.join(dir, 'tasks.sqlite'));
    expect(synchronousOf(full)).toBe(2); // FULL
    await full.close();
    const normal = new SqliteTaskRepository(path.join(dir, 'tasks.sqlite'), 'NORMAL');
    expect(synchronousOf(normal)).toBe(1); // NORMAL
    await normal.close();
    const db = new Database(path.join(dir, 'tasks.sqlite'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('when INTERNAL_TOKEN is set, then calls without it get 401 and health stays open', async () => {
    const repository = new SqliteTaskRepository(path.join(dir, 'tasks.sqlite'));
    const tasks = new TaskService(repository, POLICY);
    const token = 'internal-token-0123456789';
    const server = await listen(
      createApp({ tasks, logger: createLogger('taskdb', 'silent'), ping: () => repository.ping(), tokens: { internal: token } }),
      0,
    );
    try {
      const anonymous = await fetch(`${server.url}/tasks?state=failed`);
      expect(anonymous.status).toBe(401);
      expect(ErrorBodySchema.parse(await anonymous.json()).error.code).toBe('unauthorized');
      const wrong = await fetch(`${server.url}/tasks?state=failed`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${server.url}/tasks?state=failed`, { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
      await repository.close();
    }
  });
});
