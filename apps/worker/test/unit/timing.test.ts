import { backoffDelay, sleep } from '../../src/loop/timing';

describe('backoffDelay', () => {
  const options = { initialMs: 100, maxMs: 1_000 };

  it('doubles with each failure in a row up to the ceiling', () => {
    const highest = (failures: number) => backoffDelay(failures, options, () => 1);
    expect([1, 2, 3, 4, 5, 6, 50].map(highest)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('keeps at least half of the pause, whatever the jitter', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(200);
    expect(backoffDelay(3, options, () => 0.5)).toBe(300);
  });
});

describe('sleep', () => {
  it('when the signal aborts, then it resolves at once', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const slept = sleep(10_000, controller.signal);
    controller.abort();
    await slept;
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('when the signal was aborted already, then it does not wait', async () => {
    const controller = new AbortController();
    controller.abort();
    const started = Date.now();
    await sleep(10_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('when nothing aborts, then it waits the time', async () => {
    const started = Date.now();
    await sleep(50, new AbortController().signal);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});
