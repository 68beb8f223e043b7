import { FreeSlots } from '../../src/loop/free-slots';

describe('free slots', () => {
  const never = new AbortController().signal;

  it('when slots are free, then take() gives one at once until none is left', async () => {
    const slots = new FreeSlots(2);
    await slots.take(never);
    await slots.take(never);
    expect(slots.available).toBe(0);
  });

  it('when none is free, then take() waits for a release, first come first served', async () => {
    const slots = new FreeSlots(1);
    const held = (await slots.take(never))!;
    const order: string[] = [];
    const first = slots.take(never).then((slot) => {
      order.push('first');
      return slot;
    });
    const second = slots.take(never).then((slot) => {
      order.push('second');
      return slot;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);

    held.release();
    (await first)!.release();
    await second;

    expect(order).toEqual(['first', 'second']);
    expect(slots.available).toBe(0);
  });

  it('when a slot is released twice, then it counts once', async () => {
    const slots = new FreeSlots(1);
    const slot = (await slots.take(never))!;
    slot.release();
    slot.release();
    expect(slots.available).toBe(1);
  });

  it('when the signal aborts while waiting, then take() gives undefined and the wait is forgotten', async () => {
    const slots = new FreeSlots(1);
    const held = (await slots.take(never))!;
    const controller = new AbortController();
    const waiting = slots.take(controller.signal);

    controller.abort();

    await expect(waiting).resolves.toBeUndefined();
    held.release();
    expect(slots.available).toBe(1);
  });
});
