import { forEachBounded } from '../src';

describe('forEachBounded', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('when there are more items than the limit, then each is done once, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];

    await forEachBounded(
      Array.from({ length: 20 }, (_, index) => index),
      3,
      async (item) => {
        running += 1;
        most = Math.max(most, running);
        await tick();
        done.push(item);
        running -= 1;
      },
    );

    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, index) => index));
    expect(most).toBe(3);
  });

  it('when an item fails, then the whole rejects with its error and no further item starts', async () => {
    const started: number[] = [];

    const run = forEachBounded([1, 2, 3, 4, 5, 6], 2, async (item) => {
      started.push(item);
      await tick();
      if (item === 2) throw new Error('item 2 failed');
    });

    await expect(run).rejects.toThrow('item 2 failed');
    await tick();
    expect(started).toEqual([1, 2, 3]);
  });

  it('when there are no items, then it resolves at once', async () => {
    await expect(forEachBounded([], 4, () => Promise.reject(new Error('never called')))).resolves.toBeUndefined();
  });
});
