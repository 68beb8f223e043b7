import { randomUUID } from 'node:crypto';
import { ErrorBodySchema, taskdbContract } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import type { TaskRepository } from '../../src/data-access/task-repository';
import { TaskService } from '../../src/domain/task-service';
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/test-databases';

describe.each(BACKENDS)('taskdb API on %s', (backend) => {
  let database: TestDatabase;
  let repository: TaskRepository;
  let server: Listening;
  let client: ContractClient;
  let tasks: TaskService;
  let now: number;

  /** Backoff before retry n is half its ceiling with random() = 0: 500 ms, 1000 ms, … */
  const POLICY = { maxAttempts: 2, attemptTimeoutMs: 120_000, retryBaseMs: 1_000, retryMaxMs: 30_000 };
  const start = async (): Promise<void> => {
    repository = await database.open();
    tasks = new TaskService(repository, { ...POLICY, now: () => now, random: () => 0 });
    server = await listen(createApp({ tasks, logger: createLogger('taskdb', 'silent'), ping: () => repository.ping() }), 0);
    client = new ContractClient({ service: 'taskdb', baseUrl: server.url });
  };
  const stop = async (): Promise<void> => {
    await server.close();
    await repository.close();
  };

  beforeEach(async () => {
    now = Date.parse('2026-01-01T00:00:00Z');
    database = await createTestDatabase(backend);
    await start();
  });

  afterEach(async () => {
    await server.close();
    await database.drop();
  });

  const create = async (id = randomUUID()) => {
    const result = await client.call(taskdbContract.create, { body: { id, op: 'swap-red-blue', contentType: 'image/png' } });
    expect(result.status).toBe(201);
    return id;
  };
  const claim = async (leaseMs = 30_000) => {
    const result = await client.call(taskdbContract.claim, { body: { leaseMs } });
    return result.status === 200 ? result.body : undefined;
  };
  const send = (method: string, urlPath: string, body?: unknown) =>
    fetch(`${server.url}${urlPath}`, {
      method,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const expectError = async (response: Response, status: number, code: string) => {
    expect(response.status).toBe(status);
    const body = ErrorBodySchema.parse(await response.json());
    expect(body.error.code).toBe(code);
    return body.error.message;
  };

  it('when a task is created, then it is not_started with no attempts', async () => {
    const id = await create();
    const got = await client.call(taskdbContract.get, { params: { id } });
    expect(got).toMatchObject({ status: 200, body: { id, state: 'not_started', attempt: 0, error: null, leaseExpiresAt: null } });
  });

  it('when tasks are claimed, then the oldest comes first, with a lease, and each only once', async () => {
    const first = await create();
    const second = await create();
    const a = await claim(10_000);
    const b = await claim(10_000);
    expect(a).toMatchObject({ id: first, state: 'in_progress', attempt: 1, leaseExpiresAt: new Date(now + 10_000).toISOString() });
    expect(b?.id).toBe(second);
    expect(a?.leaseToken).not.toBe(b?.leaseToken);
    expect(await claim()).toBeUndefined();
  });

  it('when many claims race, then no task is handed out twice', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => create()));
    const claims = await Promise.all(Array.from({ length: 30 }, () => claim()));
    const claimed = claims.filter((c) => c !== undefined).map((c) => c.id);
    expect(claimed.sort()).toEqual([...ids].sort());
  });

  it('when a lease expires, then the task is claimable again after a backoff, with attempt + 1, and the old lease is fenced off', async () => {
    const id = await create();
    const first = (await claim(5_000))!;
    now += 5_001;
    expect(await tasks.reapExpired()).toBe(1);
    const waiting = await client.call(taskdbContract.get, { params: { id } });
    expect(waiting.status === 200 && waiting.body).toMatchObject({
      state: 'not_started',
      attempt: 1,
      error: expect.stringContaining('expired'),
    });
    expect(await claim(5_000)).toBeUndefined();
    now += 500;
    const second = (await claim(5_000))!;
    expect(second).toMatchObject({ id, attempt: 2 });
    const stale = await client.call(taskdbContract.changeState, {
      params: { id },
      body: { to: 'finished', leaseToken: first.leaseToken },
    });
    expect(stale.status).toBe(409);
    const extendStale = await client.call(taskdbContract.extendLease, {
      params: { id },
      body: { leaseToken: first.leaseToken, leaseMs: 5_000 },
    });
    expect(extendStale.status).toBe(409);
  });

  it('when the last attempt’s lease expires, then the task ends failed with the reason', async () => {
    const id = await create();
    await claim(5_000);
    now += 6_000;
    await tasks.reapExpired();
    now += 500;
    expect((await claim(5_000))?.attempt).toBe(2);
    now += 6_000;
    expect(await claim(5_000)).toBeUndefined();
    const got = await client.call(taskdbContract.get, { params: { id } });
    expect(got.status === 200 && got.body).toMatchObject({ state: 'failed', error: expect.stringContaining('2 attempts') });
  });

  it('when a lease is extended, then it does not expire at the old time', async () => {
    const id = await create();
    const held = (await claim(5_000))!;
    now += 4_000;
    const extended = await client.call(taskdbContract.extendLease, {
      params: { id },
      body: { leaseToken: held.leaseToken, leaseMs: 5_000 },
    });
    expect(extended.status === 200 && extended.body.leaseExpiresAt).toBe(new Date(now + 5_000).toISOString());
    now += 2_000;
    expect(await claim()).toBeUndefined();
  });

  it('when the holder finishes, then the task is finished, and repeating it is a success', async () => {
    const id = await create();
    const held = (await claim())!;
    const body = { to: 'finished' as const, leaseToken: held.leaseToken };
    const done = await client.call(taskdbContract.changeState, { params: { id }, body });
    expect(done).toMatchObject({ status: 200, body: { state: 'finished', leaseExpiresAt: null } });
    const again = await client.call(taskdbContract.changeState, { params: { id }, body });
    expect(again).toMatchObject({ status: 200, body: { state: 'finished' } });
  });

  it('when the holder reports a failure, then the task is failed with the reason', async () => {
    const id = await create();
    const held = (await claim())!;
    const failed = await client.call(taskdbContract.changeState, {
      params: { id },
      body: { to: 'failed', error: 'could not decode image/png', leaseToken: held.leaseToken },
    });
    expect(failed).toMatchObject({ status: 200, body: { state: 'failed', error: 'could not decode image/png' } });
  });

  it('when a task is released, then it can be claimed again after the backoff, without using up an attempt', async () => {
    const id = await create();
    const release = async (leaseToken: string) =>
      client.call(taskdbContract.changeState, { params: { id }, body: { to: 'not_started', leaseToken, error: 'storage unreachable' } });
    const held = (await claim())!;
    const released = await release(held.leaseToken);
    expect(released.status === 200 && released.body).toMatchObject({ state: 'not_started', error: 'storage unreachable' });
    expect(await claim()).toBeUndefined();
    now += 500;
    const again = (await claim())!;
    expect(again).toMatchObject({ id, attempt: 2 });
    // More releases than the attempt limit (2 here): still retried.
    await release(again.leaseToken);
    now += 1_000;
    const third = (await claim())!;
    expect(third).toMatchObject({ id, attempt: 3 });
    // A lost attempt does count: the first of the two allowed.
    now += 31_000;
    await tasks.reapExpired();
    const after = await client.call(taskdbContract.get, { params: { id } });
    expect(after.status === 200 && after.body).toMatchObject({ state: 'not_started', error: expect.stringContaining('expired') });
  });

  it('when a task is released over and over, then it fails after five times the attempt limit of claims', async () => {
    const id = await create();
    for (let attempt = 1; attempt <= 10; attempt += 1) {
      now += 60_000;
      const held = (await claim())!;
      expect(held.attempt).toBe(attempt);
      await client.call(taskdbContract.changeState, {
        params: { id },
        body: { to: 'not_started', leaseToken: held.leaseToken, error: 'busy' },
      });
    }
    const after = await client.call(taskdbContract.get, { params: { id } });
    expect(after.status === 200 && after.body).toMatchObject({ state: 'failed', error: 'gave up after 10 attempts: busy' });
  });

  it('backs off exponentially, capped, with jitter between half and all of the step', () => {
    const spread = (random: number) => new TaskService(repository, { ...POLICY, retryMaxMs: 5_000, random: () => random });
    expect([1, 2, 3, 4, 5].map((n) => spread(0).retryDelayMs(n))).toEqual([500, 1_000, 2_000, 2_500, 2_500]);
    expect([1, 2, 3, 4].map((n) => spread(0.999).retryDelayMs(n))).toEqual([1_000, 1_999, 3_998, 4_998]);
  });

  it('when an attempt reaches its hard limit, then its lease cannot be extended past it', async () => {
    const id = await create();
    const held = (await claim(30_000))!;
    for (let i = 0; i < 4; i += 1) {
      now += 29_000;
      const extended = await client.call(taskdbContract.extendLease, {
        params: { id },
        body: { leaseToken: held.leaseToken, leaseMs: 30_000 },
      });
      expect(extended.status).toBe(200);
    }
    const capped = await client.call(taskdbContract.get, { params: { id } });
    expect(capped.status === 200 && capped.body.leaseExpiresAt).toBe(new Date(Date.parse('2026-01-01T00:00:00Z') + 120_000).toISOString());
    now = Date.parse('2026-01-01T00:00:00Z') + 120_000;
    const refused = await client.call(taskdbContract.extendLease, {
      params: { id },
      body: { leaseToken: held.leaseToken, leaseMs: 30_000 },
    });
    expect(refused.status).toBe(409);
  });

  it('when a create repeats an idempotency key, then the first task is answered, per owner', async () => {
    const body = { op: 'invert' as const, contentType: 'image/png' as const, idempotencyKey: 'upload-1', owner: 'alice' };
    const first = await client.call(taskdbContract.create, { body: { ...body, id: randomUUID() } });
    const again = await client.call(taskdbContract.create, { body: { ...body, id: randomUUID() } });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.status === 200 && first.status === 201 && again.body.id).toBe(first.status === 201 ? first.body.id : '');
    const otherOwner = await client.call(taskdbContract.create, { body: { ...body, owner: 'bob', id: randomUUID() } });
    expect(otherOwner.status).toBe(201);
    const listed = await client.call(taskdbContract.list, { query: { state: 'not_started' } });
    expect(listed.status === 200 && listed.body.ids.length).toBe(2);
  });

  it('when an idempotency key comes again with another image or operation, then it is a 422 naming the first task', async () => {
    const fingerprint = 'a'.repeat(64);
    const body = { op: 'invert' as const, contentType: 'image/png' as const, idempotencyKey: 'upload-2', fingerprint };
    const first = await client.call(taskdbContract.create, { body: { ...body, id: randomUUID() } });
    expect(first.status).toBe(201);
    const firstId = first.status === 201 ? first.body.id : '';
    const sameAgain = await client.call(taskdbContract.create, { body: { ...body, id: randomUUID() } });
    expect(sameAgain.status === 200 && sameAgain.body.id).toBe(firstId);

    const otherBytes = await send('POST', '/tasks', { ...body, id: randomUUID(), fingerprint: 'b'.repeat(64) });
    expect(await expectError(otherBytes, 422, 'unprocessable_entity')).toContain(firstId);
    const otherOp = await send('POST', '/tasks', { ...body, id: randomUUID(), op: 'grayscale' });
    expect(await expectError(otherOp, 422, 'unprocessable_entity')).toMatch(/another image or operation/);
    const listed = await client.call(taskdbContract.list, { query: { state: 'not_started' } });
    expect(listed.status === 200 && listed.body.ids).toEqual([firstId]);
  });

  describe('stored bytes, quotas and retention', () => {
    const createSized = (owner: string | undefined, sourceBytes: number, quotaBytes?: number) =>
      client.call(taskdbContract.create, {
        body: { id: randomUUID(), op: 'invert', contentType: 'image/png', owner, sourceBytes, quotaBytes },
      });
    const usage = async (owner?: string) => {
      const result = await client.call(taskdbContract.usage, { query: { owner } });
      return result.status === 200 ? result.body.storedBytes : -1;
    };
    const finish = async (id: string, resultBytes: number) => {
      const held = (await claim())!;
      expect(held.id).toBe(id);
      const done = await client.call(taskdbContract.changeState, {
        params: { id },
        body: { to: 'finished', leaseToken: held.leaseToken, resultBytes },
      });
      expect(done.status).toBe(200);
    };

    it('when tasks are created and finished, then their bytes count for their owner alone', async () => {
      const created = await createSized('alice', 1000);
      await createSized(undefined, 300);
      expect(await usage('alice')).toBe(1000);
      expect(await usage()).toBe(300);
      expect(await usage('bob')).toBe(0);
      await finish(created.status === 201 ? created.body.id : '', 4000);
      expect(await usage('alice')).toBe(5000);
    });

    it('when a create would pass the quota, then it is a 429 that says how much is stored, and nothing is created', async () => {
      expect((await createSized('alice', 600, 1000)).status).toBe(201);
      const refused = await send('POST', '/tasks', {
        id: randomUUID(),
        op: 'invert',
        contentType: 'image/png',
        owner: 'alice',
        sourceBytes: 500,
        quotaBytes: 1000,
      });
      expect(await expectError(refused, 429, 'quota_exceeded')).toMatch(/quota of this API key is used up/);
      expect((await createSized('bob', 500, 1000)).status).toBe(201);
      expect((await createSized('alice', 400, 1000)).status).toBe(201);
      expect(await usage('alice')).toBe(1000);
    });

    it('when housekeeping runs, then sources of ended tasks go first, and tasks past retention expire with 410', async () => {
      const first = await createSized('alice', 1000);
      const firstId = first.status === 201 ? first.body.id : '';
      const pending = await createSized('alice', 200);
      const pendingId = pending.status === 201 ? pending.body.id : '';
      await finish(firstId, 3000);

      const early = await client.call(taskdbContract.housekeeping, { query: { expireBefore: new Date(now).toISOString() } });
      // Ended now, so not before `now`: only its source is due; the task not ended yet is left alone.
      expect(early.status === 200 && early.body).toEqual({ sources: [firstId], expired: [] });
      await client.call(taskdbContract.housekeepingDone, { body: { sourcesDeleted: [firstId], expired: [] } });
      expect(await usage('alice')).toBe(3200);

      now += 60_000;
      const later = await client.call(taskdbContract.housekeeping, { query: { expireBefore: new Date(now).toISOString() } });
      expect(later.status === 200 && later.body).toEqual({ sources: [], expired: [{ id: firstId, attempt: 1 }] });
      const done = await client.call(taskdbContract.housekeepingDone, { body: { sourcesDeleted: [], expired: [firstId, pendingId] } });
      // A task that has not ended is never expired, even when asked to.
      expect(done.status === 200 && done.body).toEqual({ sourcesDeleted: 0, expired: 1 });
      expect(await usage('alice')).toBe(200);
      const gone = await send('GET', `/tasks/${firstId}`);
      expect(await expectError(gone, 410, 'gone')).toMatch(/expired/);
      expect((await client.call(taskdbContract.get, { params: { id: pendingId } })).status).toBe(200);
    });
  });

  it('when the same id is created again with the same values, then it is a success; with others, a 409', async () => {
    const id = randomUUID();
    const body = { id, op: 'invert' as const, contentType: 'image/png' as const };
    expect((await client.call(taskdbContract.create, { body })).status).toBe(201);
    expect((await client.call(taskdbContract.create, { body })).status).toBe(200);
    expect((await client.call(taskdbContract.create, { body: { ...body, op: 'grayscale' } })).status).toBe(409);
  });

  it("when a task is created with its operation's parameters, then they come back; parameters that do not go with the operation are a 400", async () => {
    const id = randomUUID();
    const created = await client.call(taskdbContract.create, {
      body: { id, op: 'resize', params: { width: 640, height: 480 }, contentType: 'image/png', width: 64, height: 48 },
    });
    expect(created).toMatchObject({ status: 201, body: { id, op: 'resize', params: { width: 640, height: 480 }, width: 64, height: 48 } });
    expect((await client.call(taskdbContract.get, { params: { id } })).body).toMatchObject({ params: { width: 640, height: 480 } });
    expect((await claim())?.params).toEqual({ width: 640, height: 480 });

    const refused = async (body: object) =>
      expectError(await send('POST', '/tasks', { id: randomUUID(), contentType: 'image/png', ...body }), 400, 'bad_request');
    expect(await refused({ op: 'resize' })).toMatch(/params: op=resize needs width, height or both/);
    expect(await refused({ op: 'resize', params: {} })).toMatch(/needs width, height or both/);
    expect(await refused({ op: 'invert', params: { width: 10 } })).toMatch(/params: width goes with op=resize only, not with op=invert/);
    expect(await refused({ op: 'resize', params: { width: 0 } })).toMatch(/params\.width: must be a whole number of pixels from 1 to 8192/);
    expect((await client.call(taskdbContract.list, { query: { state: 'not_started' } })).body).toEqual({ ids: [], nextCursor: null });
  });

  it.each([
    ['not_started', 'finished'],
    ['not_started', 'failed'],
    ['not_started', 'in_progress'],
    ['finished', 'not_started'],
    ['finished', 'failed'],
  ])('when a task in %s is moved to %s, then it is a 409', async (from, to) => {
    const id = await create();
    if (from === 'finished') {
      const held = (await claim())!;
      await client.call(taskdbContract.changeState, { params: { id }, body: { to: 'finished', leaseToken: held.leaseToken } });
    }
    const message = await expectError(await send('POST', `/tasks/${id}/state`, { to }), 409, 'conflict');
    expect(message).toContain(to);
  });

  it('when ids are listed by state, then pages follow the cursor, oldest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await create());
    await claim();
    const page1 = await client.call(taskdbContract.list, { query: { state: 'not_started', limit: 2 } });
    expect(page1.status === 200 && page1.body.ids).toEqual(ids.slice(1, 3));
    const cursor = page1.status === 200 ? page1.body.nextCursor : null;
    expect(cursor).not.toBeNull();
    const page2 = await client.call(taskdbContract.list, { query: { state: 'not_started', limit: 2, cursor: cursor! } });
    expect(page2.status === 200 && page2.body).toEqual({ ids: ids.slice(3, 5), nextCursor: null });
    const inProgress = await client.call(taskdbContract.list, { query: { state: 'in_progress' } });
    expect(inProgress.status === 200 && inProgress.body.ids).toEqual([ids[0]]);
  });

  describe("an operator's routes", () => {
    const fail = async () => {
      const id = await create();
      const held = (await claim())!;
      const failed = await client.call(taskdbContract.changeState, {
        params: { id },
        body: { to: 'failed', error: 'could not decode', leaseToken: held.leaseToken },
      });
      expect(failed.status).toBe(200);
      return id;
    };

    it('when tasks are listed with view=tasks, then each page carries the tasks, and the cursor leads to the next', async () => {
      const ids = [await fail(), await fail(), await fail()];
      const first = await client.call(taskdbContract.list, { query: { state: 'failed', limit: 2, view: 'tasks' } });
      expect(first.status === 200 && first.body.tasks!.map((task) => [task.id, task.state, task.error, task.sourceStored])).toEqual(
        ids.slice(0, 2).map((id) => [id, 'failed', 'could not decode', true]),
      );
      const cursor = first.status === 200 ? first.body.nextCursor! : '';
      const second = await client.call(taskdbContract.list, { query: { state: 'failed', limit: 2, cursor, view: 'tasks' } });
      expect(second.status === 200 && second.body).toMatchObject({ ids: [ids[2]], nextCursor: null, tasks: [{ id: ids[2] }] });
      const idsOnly = await send('GET', '/tasks?state=failed');
      expect(Object.keys((await idsOnly.json()) as object).sort()).toEqual(['ids', 'nextCursor']);
    });

    it('when a failed task is retried, then it answers not_started with the error cleared, and a claim takes it', async () => {
      const id = await fail();
      const retried = await client.call(taskdbContract.retry, { params: { id }, body: {} });
      expect(retried).toMatchObject({ status: 200, body: { id, state: 'not_started', error: null, attempt: 1, sourceStored: true } });
      expect(await claim()).toMatchObject({ id, attempt: 2 });
      const again = await send('POST', `/tasks/${id}/retry`, {});
      expect(await expectError(again, 409, 'conflict')).toBe(`task ${id} is in_progress: only a failed task can be retried`);
    });

    it('when a waiting task is cancelled, then it answers failed with the reason, and again the same', async () => {
      const id = await create();
      const cancelled = await client.call(taskdbContract.cancel, { params: { id }, body: {} });
      expect(cancelled).toMatchObject({ status: 200, body: { id, state: 'failed', error: 'cancelled by an operator' } });
      const again = await client.call(taskdbContract.cancel, { params: { id }, body: {} });
      expect(again.status === 200 && cancelled.status === 200 && again.body).toEqual(cancelled.body);
      const other = await create();
      await claim();
      expect(await expectError(await send('POST', `/tasks/${other}/cancel`, {}), 409, 'conflict')).toMatch(/is in_progress/);
    });

    it('when a task is deleted, then it answers 204, the task is unknown, and deleting it again is a 404', async () => {
      const id = await fail();
      expect((await client.call(taskdbContract.remove, { params: { id } })).status).toBe(204);
      expect((await client.call(taskdbContract.get, { params: { id } })).status).toBe(404);
      await expectError(await send('DELETE', `/tasks/${id}`), 404, 'not_found');
      const held = await create();
      await claim();
      expect(await expectError(await send('DELETE', `/tasks/${held}`), 409, 'conflict')).toMatch(/is in_progress/);
    });
  });

  it('when the server restarts, then tasks and their states are still there', async () => {
    const id = await create();
    await claim();
    await stop();
    await start();
    const got = await client.call(taskdbContract.get, { params: { id } });
    expect(got.status === 200 && got.body.state).toBe('in_progress');
  });

  it.each([
    ['an unknown id', 'GET', `/tasks/${randomUUID()}`, undefined, 404, 'not_found'],
    ['a malformed id', 'GET', '/tasks/42', undefined, 400, 'bad_request'],
    ['a wrong state name', 'GET', '/tasks?state=done', undefined, 400, 'bad_request'],
    ['a missing state', 'GET', '/tasks', undefined, 400, 'bad_request'],
    ['a bad limit', 'GET', '/tasks?state=failed&limit=0', undefined, 400, 'bad_request'],
    ['a bad cursor', 'GET', '/tasks?state=failed&cursor=abc', undefined, 400, 'bad_request'],
    ['a cursor past any sequence number', 'GET', `/tasks?state=failed&cursor=${'9'.repeat(20)}`, undefined, 400, 'bad_request'],
    ['a missing field', 'POST', '/tasks', { id: randomUUID(), op: 'invert' }, 400, 'bad_request'],
    ['an unknown operation', 'POST', '/tasks', { id: randomUUID(), op: 'melt', contentType: 'image/png' }, 400, 'bad_request'],
    ['a malformed id in a body', 'POST', '/tasks', { id: 'x', op: 'invert', contentType: 'image/png' }, 400, 'bad_request'],
    ['a change to a wrong state name', 'POST', `/tasks/${randomUUID()}/state`, { to: 'done' }, 400, 'bad_request'],
    ['a change of an unknown task', 'POST', `/tasks/${randomUUID()}/state`, { to: 'failed' }, 404, 'not_found'],
    ['a too short lease', 'POST', '/claims', { leaseMs: 1 }, 400, 'bad_request'],
    ['malformed JSON', 'POST', '/claims', '{"leaseMs":', 400, 'bad_request'],
    ['a wrong method', 'DELETE', '/tasks', undefined, 405, 'method_not_allowed'],
    ['a bad view', 'GET', '/tasks?state=failed&view=all', undefined, 400, 'bad_request'],
    ['a retry of a malformed id', 'POST', '/tasks/42/retry', {}, 400, 'bad_request'],
    ['a retry of an unknown task', 'POST', `/tasks/${randomUUID()}/retry`, {}, 404, 'not_found'],
    ['a retry with a time that is not one', 'POST', `/tasks/${randomUUID()}/retry`, { endedAfter: 'soon' }, 400, 'bad_request'],
    ['a cancel of a malformed id', 'POST', '/tasks/42/cancel', {}, 400, 'bad_request'],
    ['a cancel with an empty reason', 'POST', `/tasks/${randomUUID()}/cancel`, { reason: '' }, 400, 'bad_request'],
    ['a cancel of an unknown task', 'POST', `/tasks/${randomUUID()}/cancel`, {}, 404, 'not_found'],
    ['a delete of a malformed id', 'DELETE', '/tasks/42', undefined, 400, 'bad_request'],
  ])('when a request has %s, then it is refused with a JSON error', async (_name, method, urlPath, body, status, code) => {
    await expectError(await send(method, urlPath, body), status, code);
    expect((await send('GET', '/healthz')).status).toBe(200);
  });
});
