import { commonContract, type ReadyCheckState } from '@pixelmill/contracts';
import type { ContractClient } from './http-client';

/**
 * Another pixelmill service as `/readyz` reports it, from one small call that carries the
 * client's token (`GET /authz`): `ok` when the service accepts the token or requires none,
 * `unauthorized` when it answers but refuses it, so that a token differing between two services
 * shows before a real call fails with it. A service older than the route answers 404: reachable,
 * its token unchecked, and taken as `ok` so that a rolling upgrade leaves its callers ready.
 * Throws (`failing`) when the service cannot be reached or answers outside the route's contract.
 */
export async function serviceReadiness(client: ContractClient): Promise<ReadyCheckState> {
  const { status } = await client.call(commonContract.authz, {});
  switch (status) {
    case 204:
    case 404:
      return 'ok';
    case 401:
      return 'unauthorized';
  }
}
