/**
 * Wakes waiting calls when something happens, instead of polling: getWork calls when a task
 * is created, isReady calls when their task finishes or fails. A wait also ends at its
 * timeout or when its caller goes away.
 */
export class Signal {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Wakes every wait on `topic`. */
  notify(topic = ''): void {
    const waiting = this.waiters.get(topic);
    if (!waiting) return;
    this.waiters.delete(topic);
    for (const wake of waiting) wake();
  }

  wait(ms: number, signal?: AbortSignal, topic = ''): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        const set = this.waiters.get(topic);
        set?.delete(done);
        if (set?.size === 0) this.waiters.delete(topic);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const set = this.waiters.get(topic) ?? new Set();
      set.add(done);
      this.waiters.set(topic, set);
      signal?.addEventListener('abort', done, { once: true });
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
