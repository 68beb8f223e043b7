import { z } from 'zod';
import { defineRoute, kvContract, type KvEntry } from '@pixelmill/contracts';
import {
  AppError,
  createServiceApp,
  Discovery,
  instanceIdOf,
  instanceKey,
  listen,
  mountContract,
  parseConfig,
  registerService,
  ServerEnvSchema,
} from '../src';
import { logger } from './servers';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** Listens on a free port; closed after the test unless closed before (closing twice is fine). */
async function serve(app: ReturnType<typeof createServiceApp>) {
  const server = await listen(app, 0);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= server.close());
  closers.push(close);
  return { url: server.url, close };
}

/** Polls until `check` holds; the deadline is generous, for a busy machine. */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A kv in memory served through the real kv contract: TTLs, prefix lists and deletes as kv has them. */
async function startKv() {
  const entries = new Map<string, KvEntry & { until: number }>();
  const live = (key: string) => {
    const entry = entries.get(key);
    if (entry && entry.until <= Date.now()) entries.delete(key);
    return entries.get(key);
  };
  const plain = ({ until: _, ...entry }: KvEntry & { until: number }): KvEntry => entry;
  const missing = (key: string) => new AppError('not_found', 404, `no key "${key}"`);
  const app = createServiceApp({
    service: 'kv',
    logger,
    routes: (router) =>
      mountContract(router, kvContract, {
        set: ({ params, body }) => {
          const until = body.ttlSeconds === undefined ? Infinity : Date.now() + body.ttlSeconds * 1000;
          const expiresAt = until === Infinity ? null : new Date(until).toISOString();
          const entry = { key: params.key, value: body.value, updatedAt: new Date().toISOString(), expiresAt, until };
          entries.set(params.key, entry);
          return { status: 200, body: plain(entry) };
        },
        get: ({ params }) => {
          const entry = live(params.key);
          if (!entry) throw missing(params.key);
          return { status: 200, body: plain(entry) };
        },
        delete: ({ params }) => {
          if (!live(params.key)) throw missing(params.key);
          entries.delete(params.key);
          return { status: 204, body: undefined };
        },
        list: ({ query }) => {
          const keys = [...entries.keys()].filter((key) => key.startsWith(query.prefix) && live(key)).sort();
          return { status: 200, body: { items: keys.map((key) => plain(entries.get(key)!)), nextCursor: null } };
        },
      }),
  });
  return { server: await serve(app), entries, keys: () => [...entries.keys()].filter((key) => live(key)).sort() };
}

const who = defineRoute({
  method: 'GET',
  path: '/who',
  summary: 'which instance answered',
  responses: { 200: z.object({ instance: z.string() }) },
});
const note = defineRoute({
  method: 'POST',
  path: '/note',
  summary: 'not safe to repeat',
  body: z.object({ text: z.string() }),
  responses: { 200: z.object({ instance: z.string() }) },
});

/** An instance of a service over the routes above; counts the calls it answered. */
async function startInstance(instance: string) {
  let calls = 0;
  const answer = () => {
    calls += 1;
    return { status: 200 as const, body: { instance } };
  };
  const app = createServiceApp({
    service: 'storage',
    logger,
    routes: (router) => mountContract(router, { who, note }, { who: answer, note: answer }),
  });
  return { ...(await serve(app)), calls: () => calls };
}

/** Picks in turn until the next pick of two instances is `target`. */
async function steerTo(discovery: Discovery, target: string): Promise<void> {
  while ((await discovery.resolve('storage')) === target);
}

const register = (kv: { server: { url: string } }, url: string, options: { ttlSeconds?: number; instance?: string } = {}) =>
  registerService(new Discovery({ kvUrl: kv.server.url }).kv, 'storage', url, { intervalMs: 60_000, logger, ...options });

describe('Discovery of several instances', () => {
  it('when two instances are registered, then calls go to each in turn', async () => {
    const kv = await startKv();
    const [a, b] = [await startInstance('a'), await startInstance('b')];
    const registrations = [register(kv, a.url), register(kv, b.url)];
    await until(() => kv.keys().length === 2, 'both registrations');
    const client = new Discovery({ kvUrl: kv.server.url }).client('storage');

    const answers: string[] = [];
    for (let i = 0; i < 10; i += 1) answers.push((await client.call(who, {})).body.instance);

    expect([a.calls(), b.calls()]).toEqual([5, 5]);
    expect(answers.every((instance, i) => i === 0 || instance !== answers[i - 1])).toBe(true);
    await Promise.all(registrations.map((r) => r.stop()));
  });

  it('when an instance is gone but still registered, then its call goes to the other, safe to repeat or not, and it is skipped', async () => {
    const kv = await startKv();
    const [a, b] = [await startInstance('a'), await startInstance('b')];
    const registrations = [register(kv, a.url), register(kv, b.url)];
    await until(() => kv.keys().length === 2, 'both registrations');

    await a.close();

    const sends = [
      (discovery: Discovery) => discovery.client('storage').call(who, {}),
      (discovery: Discovery) => discovery.client('storage').call(note, { body: { text: 'x' } }),
    ];
    for (const send of sends) {
      const discovery = new Discovery({ kvUrl: kv.server.url });
      await steerTo(discovery, a.url);
      expect(await send(discovery)).toMatchObject({ status: 200, body: { instance: 'b' } });
      // kv still lists it; discovery skips it.
      expect(await discovery.instances('storage')).toEqual([b.url]);
      for (let i = 0; i < 4; i += 1) expect((await send(discovery)).body.instance).toBe('b');
    }
    expect(kv.keys()).toHaveLength(2);
    await Promise.all(registrations.map((r) => r.stop()));
  });

  it('when a skipped instance is still listed after its pause, then it is called again', async () => {
    const kv = await startKv();
    const [a, b] = [await startInstance('a'), await startInstance('b')];
    const registrations = [register(kv, a.url), register(kv, b.url)];
    await until(() => kv.keys().length === 2, 'both registrations');
    const discovery = new Discovery({ kvUrl: kv.server.url, unreachableMs: 300 });

    discovery.markUnreachable('storage', a.url);
    expect(await discovery.instances('storage')).toEqual([b.url]);

    await until(async () => (await discovery.instances('storage')).includes(a.url), 'the pause to end');
    expect((await discovery.instances('storage')).sort()).toEqual([a.url, b.url].sort());
    await Promise.all(registrations.map((r) => r.stop()));
  });

  it('when every listed instance was skipped, then calls still try them rather than fail', async () => {
    const kv = await startKv();
    const a = await startInstance('a');
    const registration = register(kv, a.url);
    await until(() => kv.keys().length === 1, 'the registration');
    const discovery = new Discovery({ kvUrl: kv.server.url });

    discovery.markUnreachable('storage', a.url);

    expect((await discovery.client('storage').call(who, {})).body.instance).toBe('a');
    await registration.stop();
  });

  it('when a registration expires, then its instance leaves the set at the next read of kv', async () => {
    const kv = await startKv();
    const [a, b] = [await startInstance('a'), await startInstance('b')];
    const lasting = register(kv, a.url);
    const expiring = register(kv, b.url, { ttlSeconds: 1 });
    await until(() => kv.keys().length === 2, 'both registrations');
    const discovery = new Discovery({ kvUrl: kv.server.url, cacheMs: 100 });
    expect((await discovery.instances('storage')).sort()).toEqual([a.url, b.url].sort());

    await until(async () => (await discovery.instances('storage')).length === 1, 'the set to shrink');

    expect(await discovery.instances('storage')).toEqual([a.url]);
    const client = discovery.client('storage');
    for (let i = 0; i < 4; i += 1) await client.call(who, {});
    expect([a.calls(), b.calls()]).toEqual([4, 0]);
    await Promise.all([lasting.stop(), expiring.stop()]);
  });

  it('when a new instance registers, then it joins the set at the next read of kv', async () => {
    const kv = await startKv();
    const [a, b] = [await startInstance('a'), await startInstance('b')];
    const first = register(kv, a.url);
    await until(() => kv.keys().length === 1, 'the first registration');
    const discovery = new Discovery({ kvUrl: kv.server.url, cacheMs: 100 });
    expect(await discovery.instances('storage')).toEqual([a.url]);

    const second = register(kv, b.url);

    await until(async () => (await discovery.instances('storage')).length === 2, 'the set to grow');
    await Promise.all([first.stop(), second.stop()]);
  });

  it('when an instance stops, then its key is deleted at once', async () => {
    const kv = await startKv();
    const registration = register(kv, 'http://10.0.0.5:3002');
    await until(() => kv.keys().length === 1, 'the registration');

    await registration.stop();

    expect(kv.keys()).toEqual([]);
  });

  it('when kv stops answering, then calls go on to the instances it listed last', async () => {
    const kv = await startKv();
    const a = await startInstance('a');
    const registration = register(kv, a.url);
    await until(() => kv.keys().length === 1, 'the registration');
    const discovery = new Discovery({ kvUrl: kv.server.url, timeoutMs: 1_000 });
    expect(await discovery.resolve('storage')).toBe(a.url);
    await registration.stop();
    await kv.server.close();

    // A connection error makes discovery ask kv before the next pick; kv does not answer.
    discovery.markUnreachable('storage', a.url);

    expect((await discovery.client('storage').call(who, {})).body.instance).toBe('a');
  });

  it('when a service is not registered, then resolving it is a 503', async () => {
    const kv = await startKv();
    const discovery = new Discovery({ kvUrl: kv.server.url });
    await expect(discovery.resolve('taskdb')).rejects.toMatchObject({ status: 503, message: 'taskdb is not registered in kv' });
  });

  it('when an override is given, then it wins over the registered instances', async () => {
    const kv = await startKv();
    const a = await startInstance('a');
    const registration = register(kv, a.url);
    await until(() => kv.keys().length === 1, 'the registration');

    const discovery = new Discovery({ kvUrl: kv.server.url, overrides: { storage: 'http://lb:80' } });

    expect(await discovery.resolve('storage')).toBe('http://lb:80');
    expect(await discovery.instances('storage')).toEqual(['http://lb:80']);
    await registration.stop();
  });

  it('when kv forgets a registration, then the renewal puts it back', async () => {
    const kv = await startKv();
    const registration = registerService(new Discovery({ kvUrl: kv.server.url }).kv, 'frontend', 'http://f', {
      intervalMs: 100,
      logger,
    });
    await until(() => kv.keys().length === 1, 'the registration');
    kv.entries.clear();

    await until(() => kv.keys().length === 1, 'the renewal');

    expect(kv.entries.get(instanceKey('frontend', instanceIdOf('http://f')))?.value).toBe('http://f');
    await registration.stop();
  });
});

describe('instance keys', () => {
  it('when the same URL registers again, then it takes the same key; INSTANCE_ID wins over the URL', async () => {
    const kv = await startKv();
    const first = register(kv, 'http://10.0.0.5:3002');
    await first.stop();
    const again = register(kv, 'http://10.0.0.5:3002');
    const other = register(kv, 'http://10.0.0.6:3002');
    const named = register(kv, 'http://10.0.0.5:3002', { instance: 'storage-1' });

    expect(again.key).toBe(first.key);
    expect(first.key).toMatch(/^services\/storage\/[0-9a-f]{16}$/);
    expect(other.key).not.toBe(first.key);
    expect(named.key).toBe('services/storage/storage-1');
    await Promise.all([again.stop(), other.stop(), named.stop()]);
  });

  it('when INSTANCE_ID is not a short key-safe name, then the configuration is refused naming it', () => {
    expect(parseConfig(ServerEnvSchema, { INSTANCE_ID: 'master-2.eu_west' }).INSTANCE_ID).toBe('master-2.eu_west');
    for (const bad of ['a/b', '../x', '-a', 'x'.repeat(65), 'é']) {
      expect(() => parseConfig(ServerEnvSchema, { INSTANCE_ID: bad })).toThrow(/INSTANCE_ID/);
    }
  });
});
