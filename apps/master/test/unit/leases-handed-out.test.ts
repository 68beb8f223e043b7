import type { Claim } from '@pixelmill/contracts';
import { LeasesHandedOut } from '../../src/domain/leases-handed-out';

const claimOf = (n: number, leaseToken = `lease-token-${n}-0123456789abcdef`): Claim => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  op: 'invert',
  params: null,
  contentType: 'image/png',
  state: 'in_progress',
  attempt: 1,
  error: null,
  owner: null,
  createdAt: '2026-12-07T00:00:00.000Z',
  updatedAt: '2026-12-07T00:00:00.000Z',
  leaseExpiresAt: '2026-12-07T00:01:00.000Z',
  sourceBytes: 10,
  resultBytes: null,
  width: 2,
  height: 2,
  leaseToken,
});

describe('the leases a master handed out', () => {
  it('when asked with the lease it handed out, then it answers the claim; with another token, nothing', () => {
    const leases = new LeasesHandedOut();
    const claim = claimOf(1);
    leases.remember(claim);

    expect(leases.find(claim.id, claim.leaseToken)).toBe(claim);
    expect(leases.find(claim.id, 'another-lease-token-0123456789')).toBeUndefined();
  });

  it('when the attempt ended, then it is forgotten', () => {
    const leases = new LeasesHandedOut();
    const claim = claimOf(1);
    leases.remember(claim);
    leases.forget(claim.id);

    expect(leases.find(claim.id, claim.leaseToken)).toBeUndefined();
    expect(leases.size).toBe(0);
  });

  it('when more are handed out than it keeps, then the oldest are forgotten and the count stays bounded', () => {
    const leases = new LeasesHandedOut(3);
    const claims = [1, 2, 3, 4, 5].map((n) => claimOf(n));
    for (const claim of claims) leases.remember(claim);

    expect(leases.size).toBe(3);
    expect(leases.find(claims[0]!.id, claims[0]!.leaseToken)).toBeUndefined();
    expect(leases.find(claims[1]!.id, claims[1]!.leaseToken)).toBeUndefined();
    expect(leases.find(claims[4]!.id, claims[4]!.leaseToken)).toBe(claims[4]);
  });
});
