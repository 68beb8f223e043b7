import { InProcessRateLimiter } from '../../src/domain/rate-limiter';

/** A clock the test moves by hand. */
const manualClock = (start = 1_000_000) => {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
};

describe('InProcessRateLimiter', () => {
  it('when a client is new, then it may make `burst` requests at once and the next is refused', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 3, now: clock.now });

    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it('when the bucket is empty, then Retry-After is the time until one token is back, rounded up', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 2, burst: 1, now: clock.now }); // one token per 30 s

    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 30 });
    clock.advance(10_500);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 20 });
  });

  it('when time passes, then tokens come back at the rate, never above the burst', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 2, now: clock.now });
    limiter.take('a');
    limiter.take('a');

    clock.advance(999);
    expect(limiter.take('a').allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take('a')).toEqual({ allowed: true, remaining: 0 });

    clock.advance(3_600_000);
    expect(limiter.take('a')).toEqual({ allowed: true, remaining: 1 });
    expect(limiter.take('a')).toEqual({ allowed: true, remaining: 0 });
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('when one client is out of tokens, then another still has its own', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 1, now: clock.now });

    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('when refused requests keep coming, then they do not push the next token further away', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 1, now: clock.now });
    limiter.take('a');

    for (let i = 0; i < 5; i += 1) {
      clock.advance(100);
      expect(limiter.take('a').allowed).toBe(false);
    }
    clock.advance(500);
    expect(limiter.take('a').allowed).toBe(true);
  });

  it('when the clock steps back, then no tokens are taken away or added', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 1, now: clock.now });
    limiter.take('a');

    clock.advance(-60_000);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('when buckets have filled up again, then they are forgotten: memory follows the active clients', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 60, burst: 2, now: clock.now }); // full again after 2 s
    for (let i = 0; i < 100; i += 1) limiter.take(`client-${i}`);
    expect(limiter.size).toBe(100);

    clock.advance(2_000);
    limiter.take('late');

    expect(limiter.size).toBe(1);
  });

  it('when more clients come than maxClients, then the one seen longest ago is forgotten', () => {
    const clock = manualClock();
    const limiter = new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, maxClients: 3, now: clock.now });
    for (const client of ['a', 'b', 'c']) limiter.take(client);
    limiter.take('a'); // refused, but seen again: now b is the oldest

    limiter.take('d');

    expect(limiter.size).toBe(3);
    expect(limiter.take('a').allowed).toBe(false); // still remembered
    expect(limiter.take('b').allowed).toBe(true); // forgotten, so a fresh bucket
  });

  it.each([[{ ratePerMinute: 0, burst: 1 }], [{ ratePerMinute: 60, burst: 0 }], [{ ratePerMinute: 60, burst: 1, maxClients: 0 }]])(
    'when built with %p, then it refuses to start',
    (options) => {
      expect(() => new InProcessRateLimiter(options)).toThrow(RangeError);
    },
  );
});
