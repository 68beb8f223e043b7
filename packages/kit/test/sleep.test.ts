import { getEventListeners } from 'node:events';
import { sleep } from '../src';

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

  it('when nothing aborts, then it waits the time, with or without a signal', async () => {
    let started = Date.now();
    await sleep(50, new AbortController().signal);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    started = Date.now();
    await sleep(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('when the time is up or the signal aborts, then no listener is left on the signal', async () => {
    const controller = new AbortController();
    await sleep(5, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const slept = sleep(10_000, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    await slept;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
