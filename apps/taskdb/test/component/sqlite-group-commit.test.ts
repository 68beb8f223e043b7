import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteTaskRepository } from '../../src/data-access/sqlite-task-repository';
import type { NewTask } from '../../src/data-access/task-repository';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const newTask = (): NewTask => ({ id: randomUUID(), op: 'invert', contentType: 'image/png', sourceBytes: 100 });

describe('taskdb on SQLite: group commit', () => {
  let dir: string;
  let file: string;
  let repository: SqliteTaskRepository;
  /** Another connection on the same file: it sees only what was committed. */
  let other: Database.Database;
  const committedIds = (): string[] =>
    other
      .prepare<[], { id: string }>('SELECT id FROM tasks ORDER BY seq')
      .all()
      .map((row) => row.id);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-taskdb-'));
    file = path.join(dir, 'tasks.sqlite');
    repository = new SqliteTaskRepository(file);
    other = new Database(file, { readonly: true });
  });
  afterEach(async () => {
    other.close();
    await repository.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when writes are asked for in one turn, then they share one commit and each is answered once it is on disk', async () => {
    const tasks = Array.from({ length: 8 }, newTask);
    const commitsBefore = repository.commits;
    // What another connection sees at the moment each write is answered.
    const seenWhenAnswered = await Promise.all(
      tasks.map(async (task) => {
        const result = await repository.insert(task, NOW);
        expect(result.kind).toBe('created');
        return committedIds().includes(task.id);
      }),
    );
    expect(seenWhenAnswered).toEqual(tasks.map(() => true));
    expect(repository.commits - commitsBefore).toBe(1);

    // Reopened (a restart): every answered write is there.
    await repository.close();
    repository = new SqliteTaskRepository(file);
    for (const task of tasks) expect((await repository.get(task.id))?.id).toBe(task.id);
  });

  it('when one write of a group fails, then only its caller fails and the others are committed', async () => {
    const good = [newTask(), newTask(), newTask()];
    // A task without an op: the insert statement throws.
    const bad = { ...newTask(), op: undefined } as unknown as NewTask;
    const results = await Promise.allSettled([
      repository.insert(good[0]!, NOW),
      repository.insert(bad, NOW),
      repository.insert(good[1]!, NOW),
      repository.insert(good[2]!, NOW),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(committedIds()).toEqual(good.map((task) => task.id));
    // Nothing of the failed write stayed: its bytes are not counted for the owner.
    expect(await repository.usage(null)).toBe(300);
  });

  it('when a write is not committed yet, then a read does not see it', async () => {
    const task = newTask();
    const inserted = repository.insert(task, NOW);
    const readMeanwhile = repository.get(task.id);
    expect(await readMeanwhile).toBeUndefined();
    expect((await inserted).kind).toBe('created');
    expect((await repository.get(task.id))?.id).toBe(task.id);
  });

  it('when the writes of a group depend on each other, then each sees the ones before it', async () => {
    const [first, second] = [newTask(), newTask()];
    const grant = (n: number) => ({ leaseToken: `lease-${n}`, leaseExpiresAt: NOW + 60_000, attemptDeadline: NOW + 120_000 });
    const [, , claimA, claimB, claimC] = await Promise.all([
      repository.insert(first, NOW),
      repository.insert(second, NOW),
      repository.claim(grant(1), NOW),
      repository.claim(grant(2), NOW),
      repository.claim(grant(3), NOW),
    ]);
    expect([claimA.record?.id, claimB.record?.id, claimC.record]).toEqual([first.id, second.id, undefined]);
    expect((await repository.leases(first.id)).map((lease) => lease.leaseToken)).toEqual(['lease-1']);
  });
});
