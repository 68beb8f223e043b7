import { randomUUID } from 'node:crypto';
import type { CreateTaskBody, TaskEvent } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import type { TaskRepository } from '../../src/data-access/task-repository';
import { TaskService, type TaskServiceOptions } from '../../src/domain/task-service';
import { createTestDatabase, type Backend, type TestDatabase } from '../support/test-databases';

/** Backoff before retry n is half its ceiling with random() = 0: 500 ms, 1000 ms, … */
const POLICY = { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };
const START = Date.parse('2026-01-01T00:00:00Z');

/** Resolves to the AppError `promise` rejects with, for its status and message. */
async function refusal(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

/**
 * Every rule of the task service, on one backend: the same tests run on SQLite and PostgreSQL,
 * so the two behave alike.
 */
export function describeTaskStoreConformance(backend: Backend): void {
  describe(`the task store on ${backend}`, () => {
    let database: TestDatabase;
    let repository: TaskRepository;
    let tasks: TaskService;
    let events: TaskEvent[];
    let now: number;

    const service = (repo: TaskRepository, options: Partial<TaskServiceOptions> = {}) =>
      new TaskService(repo, { ...POLICY, now: () => now, random: () => 0, events: { publish: (e) => events.push(e) }, ...options });

    beforeEach(async () => {
      now = START;
      events = [];
      database = await createTestDatabase(backend);
      repository = await database.open();
      tasks = service(repository);
    });

    afterEach(async () => {
      await database.drop();
    });

    const create = async (extra: Partial<CreateTaskBody> = {}) => {
      const { task, created } = await tasks.create({ id: randomUUID(), op: 'invert', contentType: 'image/png', sourceBytes: 0, ...extra });
      expect(created).toBe(true);
      return task.id;
    };
    const claim = (leaseMs = 30_000) => tasks.claim(leaseMs);
    const mustClaim = async (leaseMs = 30_000) => {
      const claimed = await claim(leaseMs);
      if (!claimed) throw new Error('expected a task to claim');
      return claimed;
    };

    describe('creation', () => {
      it('when a task is created, then it is not_started with no attempts, and a created event follows', async () => {
        const id = await create();
        expect(await tasks.get(id)).toMatchObject({ id, state: 'not_started', attempt: 0, error: null, leaseExpiresAt: null });
        expect(events).toEqual([{ kind: 'created', id }]);
      });

      it('when the same id is created again, then the task is answered with the same values and a 409 with others', async () => {
        const body = { id: randomUUID(), op: 'invert' as const, contentType: 'image/png' as const, sourceBytes: 10 };
        await tasks.create(body);
        expect(await tasks.create(body)).toMatchObject({ created: false, task: { id: body.id } });
        expect((await refusal(tasks.create({ ...body, op: 'grayscale' }))).status).toBe(409);
        expect(events).toHaveLength(1);
        expect(await tasks.usage(undefined)).toEqual({ owner: null, storedBytes: 10 });
      });

      it("when a task is created with its operation's parameters, then it keeps them, claimed too; the same id with others is a 409", async () => {
        const body = { id: randomUUID(), op: 'resize' as const, contentType: 'image/png' as const, sourceBytes: 0, params: { width: 800 } };
        await tasks.create(body);
        const both = await create({ op: 'resize', params: { height: 600, width: 400 } });
        const none = await create();
        expect(await tasks.get(body.id)).toMatchObject({ op: 'resize', params: { width: 800 } });
        expect((await tasks.get(both)).params).toEqual({ width: 400, height: 600 });
        expect((await tasks.get(none)).params).toBeNull();
        expect(await mustClaim()).toMatchObject({ id: body.id, params: { width: 800 } });
        expect(await mustClaim()).toMatchObject({ id: both, params: { width: 400, height: 600 } });

        expect(await tasks.create(body)).toMatchObject({ created: false, task: { id: body.id, params: { width: 800 } } });
        expect((await refusal(tasks.create({ ...body, params: { width: 801 } }))).status).toBe(409);
        expect((await refusal(tasks.create({ ...body, params: { width: 800, height: 10 } }))).status).toBe(409);
      });

      it('when an idempotency key comes again, then the first task is answered, per owner', async () => {
        const body = {
          op: 'invert' as const,
          contentType: 'image/png' as const,
          idempotencyKey: 'upload-1',
          owner: 'alice',
          sourceBytes: 0,
        };
        const first = await tasks.create({ ...body, id: randomUUID() });
        const again = await tasks.create({ ...body, id: randomUUID() });
        expect(again).toEqual({ task: first.task, created: false });
        expect((await tasks.create({ ...body, owner: 'bob', id: randomUUID() })).created).toBe(true);
        expect((await tasks.list('not_started', 10)).ids).toHaveLength(2);
        expect(events.filter((e) => e.kind === 'created')).toHaveLength(2);
      });

      it('when an idempotency key comes again with another image or operation, then it is a 422 naming the first task', async () => {
        const body = {
          op: 'invert' as const,
          contentType: 'image/png' as const,
          idempotencyKey: 'k',
          fingerprint: 'a'.repeat(64),
          sourceBytes: 0,
        };
        const first = await tasks.create({ ...body, id: randomUUID() });
        const otherBytes = await refusal(tasks.create({ ...body, id: randomUUID(), fingerprint: 'b'.repeat(64) }));
        expect(otherBytes).toMatchObject({ status: 422, details: { taskId: first.task.id } });
        expect((await refusal(tasks.create({ ...body, id: randomUUID(), op: 'grayscale' }))).status).toBe(422);
        expect((await tasks.list('not_started', 10)).ids).toEqual([first.task.id]);
      });

      it('when creates with one idempotency key race, then one task is created and all answer it', async () => {
        const body = { op: 'invert' as const, contentType: 'image/png' as const, idempotencyKey: 'race', sourceBytes: 5 };
        const results = await Promise.all(Array.from({ length: 8 }, () => tasks.create({ ...body, id: randomUUID() })));
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
        expect(await tasks.usage(undefined)).toMatchObject({ storedBytes: 5 });
      });
    });

    describe('quotas and stored bytes', () => {
      it('when tasks are created and finished, then their bytes count for their owner alone', async () => {
        const id = await create({ owner: 'alice', sourceBytes: 1000 });
        await create({ sourceBytes: 300 });
        expect(await tasks.usage('alice')).toEqual({ owner: 'alice', storedBytes: 1000 });
        expect((await tasks.usage(undefined)).storedBytes).toBe(300);
        expect((await tasks.usage('bob')).storedBytes).toBe(0);
        const held = await mustClaim();
        expect(held.id).toBe(id);
        await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken, resultBytes: 4000 });
        expect((await tasks.usage('alice')).storedBytes).toBe(5000);
      });

      it('when a create would pass the quota, then it is a 429 saying what is stored, and nothing is created', async () => {
        await create({ owner: 'alice', sourceBytes: 600, quotaBytes: 1000 });
        const refused = await refusal(create({ owner: 'alice', sourceBytes: 500, quotaBytes: 1000 }));
        expect(refused).toMatchObject({
          status: 429,
          code: 'quota_exceeded',
          details: { storedBytes: 600, quotaBytes: 1000, neededBytes: 500 },
        });
        expect((await tasks.list('not_started', 10)).ids).toHaveLength(1);
        expect(events).toHaveLength(1);
        await create({ owner: 'bob', sourceBytes: 500, quotaBytes: 1000 });
        await create({ owner: 'alice', sourceBytes: 400, quotaBytes: 1000 });
        expect((await tasks.usage('alice')).storedBytes).toBe(1000);
      });

      it('when creates of one owner race for the last bytes of a quota, then no more than the quota is accepted', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, () => create({ owner: 'carol', sourceBytes: 400, quotaBytes: 1000 })),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
        expect((await tasks.usage('carol')).storedBytes).toBe(800);
      });

      it('when housekeeping runs, then sources of ended tasks go first, and tasks past retention expire with 410', async () => {
        const first = await create({ owner: 'alice', sourceBytes: 1000 });
        const pending = await create({ owner: 'alice', sourceBytes: 200 });
        const held = await mustClaim();
        await tasks.changeState(first, { to: 'finished', leaseToken: held.leaseToken, resultBytes: 3000 });

        // Ended now, so not before `now`: only its source is due; the task not ended yet is left alone.
        expect(await tasks.housekeeping(now, 100)).toEqual({ sources: [first], expired: [] });
        expect(await tasks.housekeepingDone({ sourcesDeleted: [first], expired: [] })).toEqual({ sourcesDeleted: 1, expired: 0 });
        expect((await tasks.usage('alice')).storedBytes).toBe(3200);
        expect(await tasks.housekeepingDone({ sourcesDeleted: [first], expired: [] })).toEqual({ sourcesDeleted: 0, expired: 0 });

        now += 60_000;
        expect(await tasks.housekeeping(now, 100)).toEqual({ sources: [], expired: [{ id: first, attempt: 1 }] });
        // A task that has not ended is never expired, even when asked to.
        expect(await tasks.housekeepingDone({ sourcesDeleted: [], expired: [first, pending] })).toEqual({ sourcesDeleted: 0, expired: 1 });
        expect((await tasks.usage('alice')).storedBytes).toBe(200);
        expect(await refusal(tasks.get(first))).toMatchObject({ status: 410, code: 'gone' });
        expect(await tasks.get(pending)).toMatchObject({ state: 'not_started' });
        expect(await tasks.housekeeping(now, 100)).toEqual({ sources: [], expired: [] });
      });

      it('when a task expires, then its idempotency key may name a new task', async () => {
        const first = await create({ idempotencyKey: 'again' });
        const held = await mustClaim();
        await tasks.changeState(first, { to: 'finished', leaseToken: held.leaseToken });
        await tasks.housekeepingDone({ sourcesDeleted: [], expired: [first] });
        const second = await tasks.create({
          id: randomUUID(),
          op: 'invert',
          contentType: 'image/png',
          sourceBytes: 0,
          idempotencyKey: 'again',
        });
        expect(second.created).toBe(true);
      });
    });

    describe('claims and leases', () => {
      it('when tasks are claimed, then the oldest comes first, with a lease, and each only once', async () => {
        const first = await create();
        const second = await create();
        const a = await mustClaim(10_000);
        expect(a).toMatchObject({ id: first, state: 'in_progress', attempt: 1, leaseExpiresAt: new Date(now + 10_000).toISOString() });
        expect((await mustClaim(10_000)).id).toBe(second);
        expect(await claim()).toBeUndefined();
      });

      it('when many claims race, then no task is handed out twice', async () => {
        const ids = await Promise.all(Array.from({ length: 20 }, () => create()));
        const claims = await Promise.all(Array.from({ length: 30 }, () => claim()));
        const claimed = claims.flatMap((c) => (c ? [c.id] : []));
        expect(claimed.sort()).toEqual([...ids].sort());
      });

      it('when a retried task’s backoff ends after a newer task was created, then the newer task is claimed first', async () => {
        const retried = await create();
        const held = await mustClaim();
        await tasks.changeState(retried, { to: 'not_started', leaseToken: held.leaseToken, error: 'busy' });
        now += 100;
        const newer = await create();
        now += 1_000;
        expect((await mustClaim()).id).toBe(newer);
        expect((await mustClaim()).id).toBe(retried);
      });

      it('when many tasks wait out a backoff, then a task ready now is still claimed, and they only once their time comes', async () => {
        const waiting: string[] = [];
        for (let i = 0; i < 30; i += 1) waiting.push(await create());
        for (let i = 0; i < 30; i += 1) {
          const held = await mustClaim();
          await tasks.changeState(held.id, { to: 'not_started', leaseToken: held.leaseToken });
        }
        const ready = await create();
        expect((await mustClaim()).id).toBe(ready);
        expect(await claim()).toBeUndefined();
        now += 500;
        expect((await mustClaim()).id).toBe(waiting[0]);
      });

      it('when a lease is extended, then it does not expire at the old time, and the lease record moves with it', async () => {
        await create();
        const held = await mustClaim(5_000);
        now += 4_000;
        const extended = await tasks.extendLease(held.id, held.leaseToken, 5_000);
        expect(extended.leaseExpiresAt).toBe(new Date(now + 5_000).toISOString());
        now += 2_000;
        expect(await tasks.reapExpired()).toBe(0);
        expect(await repository.leases(held.id)).toEqual([
          {
            taskId: held.id,
            attempt: 1,
            leaseToken: held.leaseToken,
            grantedAt: START,
            expiresAt: START + 9_000,
            endedAt: null,
            outcome: null,
          },
        ]);
      });

      it('when an attempt reaches its hard limit, then its lease cannot be extended past it', async () => {
        const id = await create();
        const held = await mustClaim(30_000);
        for (let i = 0; i < 4; i += 1) {
          now += 29_000;
          await tasks.extendLease(id, held.leaseToken, 30_000);
        }
        expect((await tasks.get(id)).leaseExpiresAt).toBe(new Date(START + 120_000).toISOString());
        now = START + 120_000;
        expect(await refusal(tasks.extendLease(id, held.leaseToken, 30_000))).toMatchObject({ status: 409 });
      });

      it('when a lease is extended with a wrong token or after it ran out, then it is a 409', async () => {
        const id = await create();
        const held = await mustClaim(5_000);
        expect((await refusal(tasks.extendLease(id, randomUUID(), 5_000))).message).toMatch(/not held with this lease/);
        now += 5_000;
        expect((await refusal(tasks.extendLease(id, held.leaseToken, 5_000))).message).toMatch(/expired/);
        expect((await refusal(tasks.extendLease(randomUUID(), held.leaseToken, 5_000))).status).toBe(404);
      });

      it('when a lease expires, then the task comes back after a backoff with attempt + 1, and the old lease is fenced off', async () => {
        const id = await create();
        const first = await mustClaim(5_000);
        now += 5_001;
        expect(await tasks.reapExpired()).toBe(1);
        expect(await tasks.get(id)).toMatchObject({ state: 'not_started', attempt: 1, error: expect.stringContaining('expired') });
        expect(await claim(5_000)).toBeUndefined();
        now += 500;
        const second = await mustClaim(5_000);
        expect(second).toMatchObject({ id, attempt: 2 });
        expect(await refusal(tasks.changeState(id, { to: 'finished', leaseToken: first.leaseToken }))).toMatchObject({ status: 409 });
        expect(await refusal(tasks.extendLease(id, first.leaseToken, 5_000))).toMatchObject({ status: 409 });
        expect(events.filter((e) => e.kind === 'ended')).toEqual([]);
      });

      it('when the last attempt’s lease expires, then a claim reaps it first and the task ends failed, with an ended event', async () => {
        const id = await create();
        await mustClaim(5_000);
        now += 6_000;
        await tasks.reapExpired();
        now += 500;
        expect((await mustClaim(5_000)).attempt).toBe(2);
        now += 6_000;
        expect(await claim(5_000)).toBeUndefined();
        const failed = await tasks.get(id);
        expect(failed).toMatchObject({ state: 'failed', error: expect.stringContaining('2 attempts') });
        expect(events.at(-1)).toEqual({ kind: 'ended', id, state: 'failed', error: failed.error });
        expect((await repository.leases(id)).map((lease) => lease.outcome)).toEqual(['lost', 'lost']);
      });

      it('when reapers run at once, then each expired task is given back once', async () => {
        for (let i = 0; i < 5; i += 1) await create();
        const held = await Promise.all(Array.from({ length: 5 }, () => mustClaim(5_000)));
        now += 5_000;
        // Two instances at once are tested on PostgreSQL alone: a SQLite file has one taskdb.
        const other = service(repository);
        const counts = await Promise.all([tasks.reapExpired(), other.reapExpired(), tasks.reapExpired()]);
        expect(counts.reduce((a, b) => a + b, 0)).toBe(5);
        for (const claimed of held) {
          expect(await tasks.get(claimed.id)).toMatchObject({ state: 'not_started', attempt: 1 });
          expect((await repository.leases(claimed.id)).map((lease) => lease.outcome)).toEqual(['lost']);
        }
      });
    });

    describe('ending attempts', () => {
      it('when the holder finishes, then the task is finished, repeating it is a success, and one ended event follows', async () => {
        const id = await create();
        const held = await mustClaim();
        now += 1_000;
        expect(await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken })).toMatchObject({
          state: 'finished',
          leaseExpiresAt: null,
        });
        expect(await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken })).toMatchObject({ state: 'finished' });
        expect(events).toEqual([
          { kind: 'created', id },
          { kind: 'ended', id, state: 'finished', error: null },
        ]);
        expect(await repository.leases(id)).toEqual([
          {
            taskId: id,
            attempt: 1,
            leaseToken: held.leaseToken,
            grantedAt: START,
            expiresAt: START + 30_000,
            endedAt: START + 1_000,
            outcome: 'finished',
          },
        ]);
      });

      it('when the holder’s finish comes several times at once, then the task finishes once and every answer is a success', async () => {
        const id = await create({ sourceBytes: 100 });
        const held = await mustClaim();
        const body = { to: 'finished' as const, leaseToken: held.leaseToken, resultBytes: 50 };
        const answers = await Promise.all(Array.from({ length: 6 }, () => tasks.changeState(id, body)));
        expect(answers.every((task) => task.state === 'finished')).toBe(true);
        expect(events.filter((e) => e.kind === 'ended')).toHaveLength(1);
        expect((await tasks.usage(undefined)).storedBytes).toBe(150);
        expect((await repository.leases(id)).map((lease) => lease.outcome)).toEqual(['finished']);
      });

      it('when the holder reports a failure, then the task is failed with the reason', async () => {
        const id = await create();
        const held = await mustClaim();
        const failed = await tasks.changeState(id, { to: 'failed', error: 'could not decode image/png', leaseToken: held.leaseToken });
        expect(failed).toMatchObject({ state: 'failed', error: 'could not decode image/png' });
        expect(events.at(-1)).toEqual({ kind: 'ended', id, state: 'failed', error: 'could not decode image/png' });
        expect((await repository.leases(id))[0]).toMatchObject({ outcome: 'failed', endedAt: now });
      });

      it('when a task is released, then it comes back after the backoff without using up an attempt; a lost one does use one', async () => {
        const id = await create();
        const held = await mustClaim();
        const released = await tasks.changeState(id, { to: 'not_started', leaseToken: held.leaseToken, error: 'storage unreachable' });
        expect(released).toMatchObject({ state: 'not_started', error: 'storage unreachable' });
        expect(await claim()).toBeUndefined();
        now += 500;
        const again = await mustClaim();
        expect(again).toMatchObject({ id, attempt: 2 });
        // More releases than the attempt limit (2 here): still retried.
        await tasks.changeState(id, { to: 'not_started', leaseToken: again.leaseToken });
        now += 1_000;
        expect(await mustClaim()).toMatchObject({ id, attempt: 3 });
        now += 31_000;
        await tasks.reapExpired();
        expect(await tasks.get(id)).toMatchObject({ state: 'not_started', error: expect.stringContaining('expired') });
        expect((await repository.leases(id)).map((lease) => lease.outcome)).toEqual(['released', 'released', 'lost']);
      });

      it('when a task is released over and over, then it fails after five times the attempt limit of claims', async () => {
        const id = await create();
        for (let attempt = 1; attempt <= 10; attempt += 1) {
          now += 60_000;
          const held = await mustClaim();
          expect(held.attempt).toBe(attempt);
          await tasks.changeState(id, { to: 'not_started', leaseToken: held.leaseToken, error: 'busy' });
        }
        expect(await tasks.get(id)).toMatchObject({ state: 'failed', error: 'gave up after 10 attempts: busy' });
        expect(events.at(-1)).toEqual({ kind: 'ended', id, state: 'failed', error: 'gave up after 10 attempts: busy' });
      });

      it.each([
        ['not_started', 'finished'],
        ['not_started', 'failed'],
        ['not_started', 'in_progress'],
        ['not_started', 'not_started'],
        ['in_progress', 'in_progress'],
        ['finished', 'not_started'],
        ['finished', 'failed'],
      ] as const)('when a task in %s is moved to %s, then it is a 409', async (from, to) => {
        const id = await create();
        if (from !== 'not_started') {
          const held = await mustClaim();
          if (from === 'finished') await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken });
        }
        const refused = await refusal(tasks.changeState(id, { to }));
        expect(refused).toMatchObject({ status: 409, code: 'conflict' });
        expect(refused.message).toContain(to);
        expect((await tasks.get(id)).state).toBe(from);
      });

      it('when an unknown task is changed, then it is a 404', async () => {
        expect(await refusal(tasks.changeState(randomUUID(), { to: 'failed' }))).toMatchObject({ status: 404, code: 'not_found' });
        expect(await refusal(tasks.get(randomUUID()))).toMatchObject({ status: 404 });
      });
    });

    describe("an operator's moves", () => {
      /** A task created with these bytes, claimed and failed by its worker. */
      const failedTask = async (extra: Partial<CreateTaskBody> = {}) => {
        const id = await create(extra);
        const held = await mustClaim();
        expect(held.id).toBe(id);
        await tasks.changeState(id, { to: 'failed', leaseToken: held.leaseToken, error: 'could not decode' });
        return { id, held };
      };

      it('when the tasks of a state are listed with the tasks view, then pages carry whole tasks, oldest first', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i += 1) ids.push((await failedTask({ owner: 'alice', sourceBytes: 10 + i })).id);
        const page1 = await tasks.list('failed', 2, undefined, 'tasks');
        const page2 = await tasks.list('failed', 2, page1.nextCursor!, 'tasks');
        const page3 = await tasks.list('failed', 2, page2.nextCursor!, 'tasks');
        expect([page1, page2, page3].map((page) => page.ids)).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
        expect(page3.nextCursor).toBeNull();
        expect(page1.tasks!.map((task) => task.id)).toEqual(page1.ids);
        expect(page1.tasks![0]).toEqual({
          id: ids[0],
          op: 'invert',
          params: null,
          contentType: 'image/png',
          state: 'failed',
          attempt: 1,
          error: 'could not decode',
          owner: 'alice',
          createdAt: new Date(START).toISOString(),
          updatedAt: new Date(START).toISOString(),
          leaseExpiresAt: null,
          sourceBytes: 10,
          resultBytes: null,
          width: null,
          height: null,
          sourceStored: true,
          expiredAt: null,
        });
        // Without the view, the ids alone, as before.
        expect(await tasks.list('failed', 2)).toEqual({ ids: ids.slice(0, 2), nextCursor: page1.nextCursor });
      });

      it('when housekeeping runs, then a failed task keeps its source (still counted) until it expires; a finished one does not', async () => {
        const { id: failed } = await failedTask({ owner: 'alice', sourceBytes: 1000 });
        const finished = await create({ owner: 'alice', sourceBytes: 300 });
        const held = await mustClaim();
        await tasks.changeState(finished, { to: 'finished', leaseToken: held.leaseToken, resultBytes: 50 });

        expect(await tasks.housekeeping(now, 100)).toEqual({ sources: [finished], expired: [] });
        await tasks.housekeepingDone({ sourcesDeleted: [finished], expired: [] });
        expect((await tasks.usage('alice')).storedBytes).toBe(1050);

        now += 60_000;
        const due = await tasks.housekeeping(now, 100);
        expect(due.sources).toEqual([]);
        expect(due.expired.map((task) => task.id).sort()).toEqual([failed, finished].sort());
        await tasks.housekeepingDone({ sourcesDeleted: [], expired: [failed, finished] });
        expect((await tasks.usage('alice')).storedBytes).toBe(0);
        expect((await tasks.list('failed', 10, undefined, 'tasks')).tasks).toEqual([
          expect.objectContaining({ id: failed, sourceStored: false, expiredAt: new Date(now).toISOString() }),
        ]);
      });

      it('when a failed task is retried, then it is claimable at once with its error cleared, the next attempt, and the whole attempt limit', async () => {
        // Failed by its leases running out: both attempts of the limit (2) lost.
        const id = await create();
        for (let attempt = 1; attempt <= 2; attempt += 1) {
          await mustClaim(5_000);
          now += 6_000;
          await tasks.reapExpired();
          now += 1_000;
        }
        expect(await tasks.get(id)).toMatchObject({ state: 'failed', attempt: 2 });
        events = [];

        const retried = await tasks.retry(id);
        expect(retried).toMatchObject({ id, state: 'not_started', attempt: 2, error: null, leaseExpiresAt: null, sourceStored: true });
        expect(events).toEqual([{ kind: 'created', id }]);
        const again = await mustClaim(5_000);
        expect(again).toMatchObject({ id, attempt: 3 });
        // One lost attempt does not fail it: the lost ones count from zero again.
        now += 6_000;
        await tasks.reapExpired();
        expect(await tasks.get(id)).toMatchObject({ state: 'not_started', attempt: 3 });
        now += 60_000;
        const last = await mustClaim();
        expect(await tasks.changeState(id, { to: 'finished', leaseToken: last.leaseToken })).toMatchObject({
          state: 'finished',
          attempt: 4,
        });
        expect((await repository.leases(id)).map((lease) => lease.outcome)).toEqual(['lost', 'lost', 'lost', 'finished']);
      });

      it("when a failed task is retried, then its last worker's report repeated afterwards is refused", async () => {
        const { id, held } = await failedTask();
        await tasks.retry(id);
        const late = await refusal(tasks.changeState(id, { to: 'failed', leaseToken: held.leaseToken, error: 'could not decode' }));
        expect(late.status).toBe(409);
        expect(await tasks.get(id)).toMatchObject({ state: 'not_started', error: null });
      });

      it.each(['not_started', 'in_progress', 'finished'] as const)(
        'when a task in %s is retried, then it is a 409 that names its state',
        async (state) => {
          const id = await create();
          if (state !== 'not_started') {
            const held = await mustClaim();
            if (state === 'finished') await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken });
          }
          const refused = await refusal(tasks.retry(id));
          expect(refused).toMatchObject({
            status: 409,
            code: 'conflict',
            message: `task ${id} is ${state}: only a failed task can be retried`,
          });
          expect((await tasks.get(id)).state).toBe(state);
        },
      );

      it('when a failed task whose source was deleted, or that ended before the given time, or expired, is retried, then it is refused', async () => {
        const { id: deleted } = await failedTask();
        await tasks.housekeepingDone({ sourcesDeleted: [deleted], expired: [] });
        expect(await refusal(tasks.retry(deleted))).toMatchObject({ status: 409, message: expect.stringMatching(/no longer stored/) });

        const { id: expired } = await failedTask();
        await tasks.housekeepingDone({ sourcesDeleted: [], expired: [expired] });
        expect(await refusal(tasks.retry(expired))).toMatchObject({ status: 410, code: 'gone' });
        expect(await refusal(tasks.retry(randomUUID()))).toMatchObject({ status: 404 });

        const { id: old } = await failedTask();
        expect(await refusal(tasks.retry(old, now + 1))).toMatchObject({
          status: 409,
          message: expect.stringMatching(/end of its retention/),
        });
        // Refusals change nothing: only the creates told of work.
        expect(events.filter((e) => e.kind === 'created')).toHaveLength(3);
        expect(await tasks.retry(old, now)).toMatchObject({ state: 'not_started' });
      });

      it('when a waiting task is cancelled, then it ends failed with the reason and an ended event, once; no worker claims it', async () => {
        const id = await create();
        const cancelled = await tasks.cancel(id, 'cancelled by an operator');
        expect(cancelled).toMatchObject({ id, state: 'failed', error: 'cancelled by an operator', attempt: 0 });
        expect(await tasks.cancel(id, 'cancelled by an operator')).toEqual(cancelled);
        expect(events.filter((e) => e.kind === 'ended')).toEqual([
          { kind: 'ended', id, state: 'failed', error: 'cancelled by an operator' },
        ]);
        expect(await claim()).toBeUndefined();
        // A cancelled task keeps its source: it may be retried.
        expect(await tasks.retry(id)).toMatchObject({ state: 'not_started' });
      });

      it.each(['in_progress', 'finished'] as const)(
        'when a task in %s is cancelled, then it is a 409 that names its state',
        async (state) => {
          const id = await create();
          const held = await mustClaim();
          if (state === 'finished') await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken });
          const refused = await refusal(tasks.cancel(id, 'cancelled by an operator'));
          expect(refused).toMatchObject({ status: 409, message: expect.stringContaining(`task ${id} is ${state}: only a waiting`) });
          expect((await tasks.get(id)).state).toBe(state);
          // The worker holding it carries on.
          if (state === 'in_progress')
            expect(await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken })).toMatchObject({ state: 'finished' });
        },
      );

      it('when a task is removed, then it is unknown, its leases are gone, its bytes stop counting and its idempotency key is free', async () => {
        const id = await create({ owner: 'alice', sourceBytes: 100, idempotencyKey: 'once' });
        const held = await mustClaim();
        await tasks.changeState(id, { to: 'finished', leaseToken: held.leaseToken, resultBytes: 40 });
        const waiting = await create({ owner: 'alice', sourceBytes: 7 });
        expect((await tasks.usage('alice')).storedBytes).toBe(147);

        await tasks.remove(id);
        expect(await refusal(tasks.get(id))).toMatchObject({ status: 404 });
        expect(await repository.leases(id)).toEqual([]);
        expect((await tasks.usage('alice')).storedBytes).toBe(7);
        expect(await refusal(tasks.remove(id))).toMatchObject({ status: 404 });
        expect(
          (
            await tasks.create({
              id: randomUUID(),
              op: 'invert',
              contentType: 'image/png',
              owner: 'alice',
              sourceBytes: 0,
              idempotencyKey: 'once',
            })
          ).created,
        ).toBe(true);
        expect((await tasks.list('finished', 10)).ids).toEqual([]);

        await tasks.remove(waiting);
        expect((await tasks.usage('alice')).storedBytes).toBe(0);
      });

      it('when a task a worker holds is removed, then it is a 409 and the task stays', async () => {
        const id = await create();
        await mustClaim();
        expect(await refusal(tasks.remove(id))).toMatchObject({ status: 409, message: expect.stringContaining('is in_progress') });
        expect((await tasks.get(id)).state).toBe('in_progress');
      });

      it('when an expired task is removed, then its record goes, and nothing is uncounted twice', async () => {
        const { id } = await failedTask({ owner: 'bob', sourceBytes: 30 });
        await create({ owner: 'bob', sourceBytes: 5 });
        await tasks.housekeepingDone({ sourcesDeleted: [], expired: [id] });
        await tasks.remove(id);
        expect(await refusal(tasks.get(id))).toMatchObject({ status: 404 });
        expect((await tasks.usage('bob')).storedBytes).toBe(5);
      });
    });

    describe('listing and restarts', () => {
      it('when ids are listed by state, then pages follow the cursor, oldest first', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i += 1) ids.push(await create());
        await mustClaim();
        const page1 = await tasks.list('not_started', 2);
        expect(page1.ids).toEqual(ids.slice(1, 3));
        expect(await tasks.list('not_started', 2, page1.nextCursor!)).toEqual({ ids: ids.slice(3, 5), nextCursor: null });
        expect(await tasks.list('in_progress', 10)).toEqual({ ids: [ids[0]], nextCursor: null });
        expect(await tasks.list('failed', 10)).toEqual({ ids: [], nextCursor: null });
      });

      it('when the store is opened again, then tasks, their states and leases are still there', async () => {
        const id = await create();
        const held = await mustClaim();
        await repository.close();
        const reopened = service(await database.open());
        expect(await reopened.get(id)).toMatchObject({ state: 'in_progress', attempt: 1 });
        await reopened.changeState(id, { to: 'finished', leaseToken: held.leaseToken });
        expect(await reopened.get(id)).toMatchObject({ state: 'finished' });
      });

      it('when the database answers, then a ping resolves', async () => {
        await expect(repository.ping()).resolves.toBeUndefined();
      });
    });
  });
}
