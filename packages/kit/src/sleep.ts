/**
 * Waits `ms`, or less when `signal` aborts first; never rejects, so a loop that sleeps between
 * turns simply goes on and sees for itself that it was stopped. Leaves no timer or listener behind.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
