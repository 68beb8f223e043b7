import type { KvRepository } from '../../src/data-access/kv-repository';
import { SWEEP_BATCH } from '../../src/data-access/kv-repository';
import { BACKENDS, type KvStore } from '../support/kv-backends';

const START = Date.parse('2026-01-01T00:00:00Z');

describe.each(BACKENDS)('kv repository on $name', (backend) => {
  let store: KvStore;
  let repository: KvRepository;
  let now: number;
  const clock = () => now;

  beforeEach(async () => {
    now = START;
    store = await backend.createStore();
    repository = await store.open(clock);
  });

  afterEach(async () => {
    await store.destroy();
  });

  const keysOf = async (prefix: string, limit = 1000) => (await repository.list(prefix, { limit })).items.map((entry) => entry.key);
  const setAll = async (keys: string[], ttlSeconds?: number) => {
    for (const key of keys) await repository.set(key, `value of ${key}`, ttlSeconds);
  };

  describe('set and get', () => {
    it('when a key is set, then it reads back with its value and times', async () => {
      const set = await repository.set('config/op', 'invert');

      expect(set).toEqual({ key: 'config/op', value: 'invert', updatedAt: new Date(START).toISOString(), expiresAt: null });
      expect(await repository.get('config/op')).toEqual(set);
    });

    it('when a key is set again, then the new value, time and expiry win', async () => {
      await repository.set('a', '1', 10);
      now += 1_000;
      await repository.set('a', '2');

      expect(await repository.get('a')).toEqual({
        key: 'a',
        value: '2',
        updatedAt: new Date(START + 1_000).toISOString(),
        expiresAt: null,
      });
    });

    it('when a key was never set, then it is absent', async () => {
      expect(await repository.get('nope')).toBeUndefined();
    });

    it.each([
      ['empty', ''],
      ['a string with a NUL character', 'a\u0000b'],
      ['a string with characters beyond the Basic Multilingual Plane', 'é ✓ 🖼'],
      ['64 KiB long', 'x'.repeat(64 * 1024)],
    ])('when a value is %s, then it reads back unchanged', async (_name, value) => {
      await repository.set('v', value);

      expect((await repository.get('v'))?.value).toBe(value);
    });
  });

  describe('time to live', () => {
    it('when a key has a ttl, then it is there until the ttl has passed and absent after', async () => {
      const set = await repository.set('services/storage', 'x', 15);
      expect(set.expiresAt).toBe(new Date(START + 15_000).toISOString());

      now = START + 14_999;
      expect(await repository.get('services/storage')).toEqual(set);
      expect(await keysOf('services/')).toEqual(['services/storage']);

      now = START + 15_000;
      expect(await repository.get('services/storage')).toBeUndefined();
      expect(await keysOf('services/')).toEqual([]);
      expect(await repository.delete('services/storage')).toBe(false);
    });

    it('when an expired key is set again, then it lives again with its new value', async () => {
      await repository.set('k', 'old', 1);
      now += 2_000;
      await repository.set('k', 'new', 1);

      expect((await repository.get('k'))?.value).toBe('new');
    });

    it('when a ttl is renewed before it ends, then the key stays', async () => {
      await repository.set('k', 'v', 10);
      now += 9_000;
      await repository.set('k', 'v', 10);
      now += 9_000;

      expect((await repository.get('k'))?.value).toBe('v');
    });
  });

  describe('delete', () => {
    it('when a key is deleted, then it is absent and a second delete finds nothing', async () => {
      await repository.set('a', '1');
      await repository.set('b', '2');

      expect(await repository.delete('a')).toBe(true);
      expect(await repository.get('a')).toBeUndefined();
      expect(await repository.delete('a')).toBe(false);
      expect((await repository.get('b'))?.value).toBe('2');
    });
  });

  describe('list by prefix', () => {
    it('when listing a prefix, then only the keys starting with it come, in key order', async () => {
      await setAll(['services/taskdb', 'services/master', 'services', 'servicesX', 'config/op', 'services/kv']);

      expect(await keysOf('services/')).toEqual(['services/kv', 'services/master', 'services/taskdb']);
      expect(await keysOf('')).toEqual(['config/op', 'services', 'services/kv', 'services/master', 'services/taskdb', 'servicesX']);
      expect(await keysOf('zzz')).toEqual([]);
    });

    it('when a prefix holds LIKE wildcards or a backslash, then they match literally', async () => {
      await setAll(['a_b', 'axb', 'a%b', 'a%%', 'ab', 'a\\b', 'a\\\\', 'a']);

      expect(await keysOf('a_')).toEqual(['a_b']);
      expect(await keysOf('a%')).toEqual(['a%%', 'a%b']);
      expect(await keysOf('a%%')).toEqual(['a%%']);
      expect(await keysOf('a\\')).toEqual(['a\\\\', 'a\\b']);
      expect(await keysOf('_')).toEqual([]);
      expect(await keysOf('%')).toEqual([]);
    });

    it('when keys differ past a prefix in characters of any width, then each comes under its prefix in code point order', async () => {
      await setAll(['é/1', 'é/2', 'ê', '🖼/a', '\uffff', 'z']);

      expect(await keysOf('é')).toEqual(['é/1', 'é/2']);
      expect(await keysOf('🖼')).toEqual(['🖼/a']);
      expect(await keysOf('')).toEqual(['z', 'é/1', 'é/2', 'ê', '\uffff', '🖼/a']);
    });

    it('when a prefix holds a NUL character, then nothing matches', async () => {
      await setAll(['a']);

      expect(await keysOf('a\u0000')).toEqual([]);
    });

    it('when a listing is longer than a page, then pages follow each other by cursor to the last, which has none', async () => {
      await setAll(['p/1', 'p/2', 'p/3', 'p/4', 'p/5', 'q/1']);

      const first = await repository.list('p/', { limit: 2 });
      expect(first.items.map((entry) => entry.key)).toEqual(['p/1', 'p/2']);
      expect(first.nextCursor).toBe('p/2');
      const second = await repository.list('p/', { limit: 2, cursor: first.nextCursor! });
      expect(second.items.map((entry) => entry.key)).toEqual(['p/3', 'p/4']);
      expect(second.nextCursor).toBe('p/4');
      const last = await repository.list('p/', { limit: 2, cursor: second.nextCursor! });
      expect(last).toEqual({ items: [expect.objectContaining({ key: 'p/5', value: 'value of p/5' })], nextCursor: null });
    });

    it('when the entries left fill the page exactly, then it is the last page', async () => {
      await setAll(['p/1', 'p/2']);

      expect((await repository.list('p/', { limit: 2 })).nextCursor).toBeNull();
    });

    it('when keys are added before the cursor between pages, then the next page neither repeats nor skips a key', async () => {
      await setAll(['p/2', 'p/4', 'p/6']);
      const first = await repository.list('p/', { limit: 2 });
      await setAll(['p/1', 'p/3', 'p/5']);

      const second = await repository.list('p/', { limit: 2, cursor: first.nextCursor! });

      expect(second.items.map((entry) => entry.key)).toEqual(['p/5', 'p/6']);
    });

    it('when expired entries lie in the range, then they neither come nor take a place in the page', async () => {
      await setAll(['p/1', 'p/2', 'p/3'], 1);
      await setAll(['p/4', 'p/5']);
      now += 2_000;

      expect(await repository.list('p/', { limit: 2 })).toEqual({
        items: [expect.objectContaining({ key: 'p/4' }), expect.objectContaining({ key: 'p/5' })],
        nextCursor: null,
      });
    });
  });

  describe('sweep of expired entries', () => {
    it('when entries have expired, then each write sweeps a bounded batch of them, and a sweep the rest', async () => {
      const expiring = Array.from({ length: SWEEP_BATCH + 20 }, (_, i) => `old/${String(i).padStart(4, '0')}`);
      await setAll(expiring, 1);
      now += 2_000;

      await repository.set('new', 'v');

      expect(await repository.sweep()).toBe(20);
      expect(await repository.sweep()).toBe(0);
    });

    it('when entries have not expired, then no sweep touches them', async () => {
      await repository.set('lasting', 'v');
      await repository.set('living', 'v', 10);
      now += 9_999;

      expect(await repository.sweep()).toBe(0);
      expect(await keysOf('l')).toEqual(['lasting', 'living']);
    });
  });

  describe('several instances on one store', () => {
    it("when two repositories share a store, then each sees the other's writes, expiries and deletes", async () => {
      const other = await store.open(clock);

      await repository.set('services/master/a', 'http://a', 5);
      await other.set('services/master/b', 'http://b');
      expect((await other.get('services/master/a'))?.value).toBe('http://a');
      expect((await keysOf('services/master/')).length).toBe(2);

      now += 6_000;
      expect((await other.list('services/master/', { limit: 10 })).items.map((entry) => entry.key)).toEqual(['services/master/b']);

      expect(await repository.delete('services/master/b')).toBe(true);
      expect(await other.get('services/master/b')).toBeUndefined();
    });

    it('when a repository is closed and the store opened again, then the data is still there', async () => {
      await repository.set('kept', 'yes');
      await repository.close();

      repository = await store.open(clock);

      expect((await repository.get('kept'))?.value).toBe('yes');
    });
  });
});
