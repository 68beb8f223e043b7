/**
 * Wakes waiting calls when something happens, instead of polling: getWork calls when a task
 * is created, isReady calls when their task finishes or fails. A wait also ends at its
 * timeout or when its caller goes away.
 *
 * A notify may carry a value to the waiters (what happened, so they need not ask again); a
 * wait that ends by timeout or abort resolves with `undefined`.
 */
export class Signal<T = void> {
  private readonly waiters = new Map<string, Set<(value?: T) => void>>();

  /** Wakes every wait on `topic`, handing each the value. */
  notify(topic = '', value?: T): void {
    const waiting = this.waiters.get(topic);
    if (!waiting) return;
    this.waiters.delete(topic);
    for (const wake of waiting) wake(value);
  }

  /** Wakes every wait on every topic with no value, so that each goes to see for itself. */
  wakeAll(): void {
    const waiting = [...this.waiters.values()];
    this.waiters.clear();
    for (const set of waiting) for (const wake of set) wake();
  }

  /** Resolves with the notified value, or `undefined` at the timeout or on abort. */
  wait(ms: number, signal?: AbortSignal, topic = ''): Promise<T | undefined> {
    return new Promise((resolve) => {
      const done = (value?: T): void => {
        clearTimeout(timer);
        const set = this.waiters.get(topic);
        set?.delete(done);
        if (set?.size === 0) this.waiters.delete(topic);
        signal?.removeEventListener('abort', wakeEmpty);
        resolve(value);
      };
      // The timeout and the abort wake with no value (an abort listener given `done` would resolve with the Event).
      const wakeEmpty = (): void => done();
      const timer = setTimeout(wakeEmpty, ms);
      const set = this.waiters.get(topic) ?? new Set();
      set.add(done);
      this.waiters.set(topic, set);
      signal?.addEventListener('abort', wakeEmpty, { once: true });
    });
  }

  /** How many calls wait, on one topic or on all. */
  waiting(topic?: string): number {
    if (topic !== undefined) return this.waiters.get(topic)?.size ?? 0;
    let count = 0;
    for (const set of this.waiters.values()) count += set.size;
    return count;
  }
}
