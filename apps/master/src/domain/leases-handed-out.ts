import type { Claim } from '../data-access/task-gateway';

/** More leases than any master hands out at once: past it the oldest is forgotten (and read from taskdb if it ends here). */
export const MAX_LEASES_REMEMBERED = 10_000;

/**
 * The tasks this master handed to workers, as taskdb answered their claims, until their attempt
 * ends here. A workFinished with the same lease then checks its result against them instead of
 * reading the task from taskdb again: what it needs (type, declared size, attempt) does not
 * change while the lease holds, and taskdb's change of state is fenced by the lease token, so a
 * lease lost meanwhile is refused there all the same. An attempt that ends through another master,
 * or a claim forgotten, costs that read as before.
 */
export class LeasesHandedOut {
  private readonly claims = new Map<string, Claim>();

  constructor(private readonly max = MAX_LEASES_REMEMBERED) {}

  remember(claim: Claim): void {
    this.claims.delete(claim.id);
    this.claims.set(claim.id, claim);
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.claims.size > this.max) this.claims.delete(this.claims.keys().next().value!);
  }

  /** The claim of this lease, when this master handed it out; undefined for any other token. */
  find(id: string, leaseToken: string): Claim | undefined {
    const claim = this.claims.get(id);
    return claim?.leaseToken === leaseToken ? claim : undefined;
  }

  forget(id: string): void {
    this.claims.delete(id);
  }

  get size(): number {
    return this.claims.size;
  }
}
