/** Milliseconds since some fixed point; injected so that tests move time instead of sleeping. */
export type Clock = () => number;

export interface RateLimiterOptions {
  /** Tokens a client earns per minute; each request takes one. */
  ratePerMinute: number;
  /** Most tokens a client can save up: the requests it may make at once after a quiet spell. */
  burst: number;
  /**
   * Most clients remembered. Past it the client seen longest ago is forgotten, which only gives
   * it a full bucket again: bounded memory is worth that imprecision.
   */
  maxClients?: number;
  now?: Clock;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

/**
 * Counts a client's uploads against its limit: {@link InProcessRateLimiter} in this process (the
 * default), or a store shared by every frontend (`data-access/shared-rate-limiter.ts`).
 */
export interface RateLimiter {
  /** Takes one upload from the client's allowance, or says how many seconds until it has one again. */
  take(client: string): RateDecision | Promise<RateDecision>;
  /** Lets go of the store's connections, on shutdown. */
  close?(): Promise<void>;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export const DEFAULT_MAX_CLIENTS = 10_000;

/**
 * A token bucket per client, in memory: each client may make `burst` requests at once and
 * `ratePerMinute` on average. A bucket that has filled up again holds nothing a new one would
 * not, so idle buckets are dropped; the map is also capped at `maxClients`. Each process counts on
 * its own: N frontends let a client make N times as many uploads.
 */
export class InProcessRateLimiter implements RateLimiter {
  /** In order of last use: a client is deleted and set again on every request. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly maxClients: number;
  private readonly now: Clock;
  /** How long an empty bucket takes to fill: after that, every bucket untouched since is idle. */
  private readonly fillMs: number;
  private lastSweep: number;

  constructor({ ratePerMinute, burst, maxClients = DEFAULT_MAX_CLIENTS, now = Date.now }: RateLimiterOptions) {
    if (!(ratePerMinute > 0)) throw new RangeError('ratePerMinute must be positive');
    if (!(burst >= 1)) throw new RangeError('burst must be at least 1');
    if (!(maxClients >= 1)) throw new RangeError('maxClients must be at least 1');
    this.perMs = ratePerMinute / 60_000;
    this.burst = burst;
    this.maxClients = maxClients;
    this.now = now;
    this.fillMs = burst / this.perMs;
    this.lastSweep = now();
  }

  /** Takes a token for the client, or says how many seconds until one is there. */
  take(client: string): RateDecision {
    const now = this.now();
    this.sweepIdle(now);
    const tokens = this.tokensAt(this.buckets.get(client), now);
    this.buckets.delete(client);
    if (tokens >= 1) {
      this.buckets.set(client, { tokens: tokens - 1, updatedAt: now });
      this.forgetOverflow();
      return { allowed: true, remaining: Math.floor(tokens - 1) };
    }
    this.buckets.set(client, { tokens, updatedAt: now });
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000)) };
  }

  /** How many clients are remembered now. */
  get size(): number {
    return this.buckets.size;
  }

  private tokensAt(bucket: Bucket | undefined, now: number): number {
    if (!bucket) return this.burst;
    // A clock that steps back (a test, an NTP correction) adds nothing rather than taking away.
    return Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.updatedAt) * this.perMs);
  }

  /** At most once per fill time, so the cost stays a small constant per request on average. */
  private sweepIdle(now: number): void {
    if (now - this.lastSweep < this.fillMs) return;
    this.lastSweep = now;
    for (const [client, bucket] of this.buckets) {
      if (this.tokensAt(bucket, now) >= this.burst) this.buckets.delete(client);
    }
  }

  private forgetOverflow(): void {
    for (const client of this.buckets.keys()) {
      if (this.buckets.size <= this.maxClients) return;
      this.buckets.delete(client);
    }
  }
}
