import { masterContract, type Work } from '@pixelmill/contracts';
import { AppError, type ContractClient } from '@pixelmill/kit';
import { refusalMessage } from './refusal-message';
import { LeaseLostError } from '../domain/work-errors';

/** What the loop needs from master. Anything not listed as a result is thrown and is transient. */
export interface MasterApi {
  /** The next task, or null when master had none within `waitMs`. */
  claimWork(waitMs: number): Promise<Work | null>;
  /** Extends the lease; returns the new expiry. Throws LeaseLostError when the lease is gone. */
  heartbeat(work: Work): Promise<string>;
  /** Throws LeaseLostError when master no longer counts this worker as the holder. */
  finish(work: Work): Promise<void>;
  /** Throws LeaseLostError when master no longer counts this worker as the holder. */
  fail(work: Work, reason: string): Promise<void>;
}

const REASON_MAX_LENGTH = 2000;

/**
 * 404 (task gone) and 409 (lease expired or taken over) both mean the work in hand is no longer
 * ours; a 400 means this worker sent something the contract refuses, a bug worth a loud error.
 */
function refusal(work: Work, what: string, result: { status: number; body: unknown }): Error {
  if (result.status === 404 || result.status === 409) {
    return new LeaseLostError(`${what} for task ${work.id} refused (${result.status}): ${refusalMessage(result)}`);
  }
  const message = `${what} for task ${work.id} answered ${result.status}: ${refusalMessage(result)}`;
  return new AppError('internal', 500, message);
}

export interface MasterApiOptions {
  /** HTTP timeout of a getWork call that may wait `waitMs` for a task. */
  pollTimeoutMs: (waitMs: number) => number;
}

export function createMasterApi(client: ContractClient, options: MasterApiOptions): MasterApi {
  const lease = (work: Work) => ({ body: { id: work.id, leaseToken: work.leaseToken } });
  return {
    async claimWork(waitMs) {
      const result = await client.call(masterContract.getWork, {
        query: { waitMs },
        timeoutMs: options.pollTimeoutMs(waitMs),
      });
      if (result.status === 200) return result.body;
      if (result.status === 204) return null;
      throw new AppError('internal', 500, `getWork answered ${result.status}: ${refusalMessage(result)}`);
    },

    async heartbeat(work) {
      const result = await client.call(masterContract.heartbeat, lease(work));
      if (result.status === 200) return result.body.leaseExpiresAt;
      throw refusal(work, 'heartbeat', result);
    },

    async finish(work) {
      const result = await client.call(masterContract.workFinished, lease(work));
      if (result.status !== 200) throw refusal(work, 'workFinished', result);
    },

    async fail(work, reason) {
      const result = await client.call(masterContract.workFailed, {
        body: { id: work.id, leaseToken: work.leaseToken, reason: reason.slice(0, REASON_MAX_LENGTH) },
      });
      if (result.status !== 200) throw refusal(work, 'workFailed', result);
    },
  };
}
