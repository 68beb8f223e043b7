export interface BackoffOptions {
  /** Pause after the first failure. */
  initialMs: number;
  /** Ceiling the doubling never passes. */
  maxMs: number;
}

/**
 * Pause after `failures` failures in a row (1 = after the first): doubles from `initialMs` up to
 * `maxMs`, then keeps a random half of it ("equal jitter"), so callers that failed together do not
 * come back together, and none waits less than half the pause.
 */
export function backoffDelay(failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  // Past 2^30 the ceiling is maxMs anyway; the cap keeps the power finite.
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
