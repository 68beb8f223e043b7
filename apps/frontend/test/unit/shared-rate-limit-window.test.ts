import { windowOf } from '../../src/data-access/shared-rate-limiter';

describe('the shared rate limit window', () => {
  it('when the defaults (120 a minute, 30 at once) are set, then the store counts 30 uploads per 15 s', () => {
    expect(windowOf({ ratePerMinute: 120, burst: 30 })).toEqual({ points: 30, durationSeconds: 15 });
  });

  it('when the bucket takes a fraction of a second over whole seconds to fill, then the window is rounded up: never more than the rate', () => {
    // 7 a minute, 1 at once: 8.57 s to fill; 1 per 9 s is 6.7 a minute.
    expect(windowOf({ ratePerMinute: 7, burst: 1 })).toEqual({ points: 1, durationSeconds: 9 });
  });

  it('when the burst is less than a second of the rate, then the window is one second holding the rate, so the average still holds', () => {
    expect(windowOf({ ratePerMinute: 600, burst: 2 })).toEqual({ points: 10, durationSeconds: 1 });
  });

  it.each([
    { ratePerMinute: 120, burst: 30 },
    { ratePerMinute: 1, burst: 3 },
    { ratePerMinute: 7, burst: 1 },
    { ratePerMinute: 600, burst: 2 },
    { ratePerMinute: 100_000, burst: 1 },
  ])('when the limit is %p, then a client may still make its burst at once and no more than the rate per window', (rate) => {
    const { points, durationSeconds } = windowOf(rate);

    expect(points).toBeGreaterThanOrEqual(rate.burst);
    expect(points).toBeLessThanOrEqual(Math.max(rate.burst, (rate.ratePerMinute * durationSeconds) / 60));
  });

  it.each([[{ ratePerMinute: 0, burst: 1 }], [{ ratePerMinute: 60, burst: 0 }]])(
    'when the limit is %p, then there is no window',
    (rate) => {
      expect(() => windowOf(rate)).toThrow(RangeError);
    },
  );
});
