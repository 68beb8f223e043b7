import { backoffDelay } from '../src';

describe('backoffDelay', () => {
  const options = { initialMs: 100, maxMs: 1_000 };

  it('when failures follow each other, then the pause doubles up to the ceiling', () => {
    const highest = (failures: number) => backoffDelay(failures, options, () => 1);
    expect([1, 2, 3, 4, 5, 6, 50, 5_000].map(highest)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
  });

  it('when the jitter is lowest, then at least half of the pause is kept', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(200);
    expect(backoffDelay(3, options, () => 0.5)).toBe(300);
  });

  it('when nothing has failed yet, then the pause is the first one', () => {
    expect(backoffDelay(0, options, () => 1)).toBe(100);
  });

  it('when no random source is given, then the pause stays within its half-to-whole range', () => {
    for (let i = 0; i < 50; i += 1) {
      const delay = backoffDelay(2, options);
      expect(delay).toBeGreaterThanOrEqual(100);
      expect(delay).toBeLessThanOrEqual(200);
    }
  });
});
