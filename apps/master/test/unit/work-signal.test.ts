import { Signal } from '../../src/domain/work-signal';

describe('Signal', () => {
  it('when a topic is notified with a value, then every wait on it resolves with that value', async () => {
    const ended = new Signal<{ state: string }>();
    const value = { state: 'finished' };
    const first = ended.wait(10_000, undefined, 'a');
    const second = ended.wait(10_000, undefined, 'a');
    expect(ended.waiting('a')).toBe(2);

    ended.notify('a', value);

    expect(await first).toBe(value);
    expect(await second).toBe(value);
    expect(ended.waiting()).toBe(0);
  });

  it('when another topic is notified, then a wait is not woken', async () => {
    const ended = new Signal<string>();
    const waiting = ended.wait(10_000, undefined, 'a');

    ended.notify('b', 'for b');

    expect(ended.waiting('a')).toBe(1);
    ended.notify('a', 'for a');
    expect(await waiting).toBe('for a');
  });

  it('when nothing is notified, then a wait resolves with undefined at its timeout', async () => {
    const ended = new Signal<string>();
    const started = Date.now();

    expect(await ended.wait(50, undefined, 'a')).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    expect(ended.waiting()).toBe(0);
  });

  it('when the caller goes away, then its wait resolves with undefined at once and a later notify does not reach it', async () => {
    const ended = new Signal<string>();
    const hangUp = new AbortController();
    const waiting = ended.wait(10_000, hangUp.signal, 'a');

    hangUp.abort();

    expect(await waiting).toBeUndefined();
    expect(ended.waiting()).toBe(0);
    ended.notify('a', 'too late');
  });

  it('when it carries no value, then notify() still wakes a wait on the default topic', async () => {
    const work = new Signal();
    const waiting = work.wait(10_000);
    expect(work.waiting('')).toBe(1);

    work.notify();

    await expect(waiting).resolves.toBeUndefined();
    expect(work.waiting()).toBe(0);
  });

  it('when every wait is woken, then each on every topic resolves with undefined and none is left', async () => {
    const ended = new Signal<string>();
    const waits = [ended.wait(10_000, undefined, 'a'), ended.wait(10_000, undefined, 'a'), ended.wait(10_000, undefined, 'b')];

    ended.wakeAll();

    expect(await Promise.all(waits)).toEqual([undefined, undefined, undefined]);
    expect(ended.waiting()).toBe(0);
  });
});
