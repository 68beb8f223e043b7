import { commonContract, masterContract, type StorageReceipt, type Work } from '@pixelmill/contracts';
import { AppError, errorBodyMessage, type ContractClient } from '@pixelmill/kit';
import { LeaseLostError } from '../domain/work-errors';

export interface CallOptions {
  /** Cancels the call (a long poll at shutdown, a heartbeat of a task that ended). */
  signal?: AbortSignal;
  /** HTTP timeout of each try, when shorter than the client's. */
  timeoutMs?: number;
}

/** What the loop needs from master. Anything not listed as a result is thrown and is transient. */
export interface MasterApi {
  /** The next task, or null when master had none within `waitMs`. */
  claimWork(waitMs: number, options?: CallOptions): Promise<Work | null>;
  /**
   * Extends the lease; returns the new expiry and, from a master that sends one, the result URL
   * valid until then. Throws LeaseLostError when the lease is gone.
   */
  heartbeat(work: Work, options?: CallOptions): Promise<{ leaseExpiresAt: string; resultUrl?: string }>;
  /**
   * The result is stored; `receipt` is storage's answer to its upload, handed on so that master
   * need not read the result back. Throws LeaseLostError when master no longer counts this worker
   * as the holder.
   */
  finish(work: Work, receipt?: StorageReceipt): Promise<void>;
  /** The task can never succeed: it ends failed. Throws LeaseLostError when the lease is gone. */
  fail(work: Work, reason: string): Promise<void>;
  /** Gives the task back at once, to be retried later. Throws LeaseLostError when the lease is gone. */
  release(work: Work, reason: string): Promise<void>;
  /**
   * Resolves when master answers `/healthz` (for the worker's `/readyz`): reachable, whatever it
   * makes of the token. A claim tells the rest.
   */
  ping(options?: CallOptions): Promise<void>;
}

const REASON_MAX_LENGTH = 2000;

/**
 * 404 (task gone) and 409 (lease expired, taken over, or past the attempt's hard limit) all mean
 * the work in hand is no longer ours; a 400 means this worker sent something the contract
 * refuses, a bug worth a loud error.
 */
function refusal(work: Work, what: string, result: { status: number; body: unknown }): Error {
  if (result.status === 404 || result.status === 409) {
    return new LeaseLostError(`${what} for task ${work.id} refused (${result.status}): ${errorBodyMessage(result)}`);
  }
  const message = `${what} for task ${work.id} answered ${result.status}: ${errorBodyMessage(result)}`;
  return new AppError('internal', 500, message);
}

export interface MasterApiOptions {
  /** HTTP timeout of a getWork call that may wait `waitMs` for a task. */
  pollTimeoutMs: (waitMs: number) => number;
}

export function createMasterApi(client: ContractClient, options: MasterApiOptions): MasterApi {
  const lease = (work: Work) => ({ id: work.id, leaseToken: work.leaseToken });
  const withReason = (work: Work, reason: string) => ({ ...lease(work), reason: reason.slice(0, REASON_MAX_LENGTH) });
  return {
    async claimWork(waitMs, { signal } = {}) {
      const result = await client.call(masterContract.getWork, {
        query: { waitMs },
        timeoutMs: options.pollTimeoutMs(waitMs),
        signal,
      });
      if (result.status === 200) return result.body;
      if (result.status === 204) return null;
      throw new AppError('internal', 500, `getWork answered ${result.status}: ${errorBodyMessage(result)}`);
    },

    async heartbeat(work, { signal, timeoutMs } = {}) {
      const result = await client.call(masterContract.heartbeat, { body: lease(work), signal, timeoutMs });
      if (result.status === 200) return { leaseExpiresAt: result.body.leaseExpiresAt, resultUrl: result.body.resultUrl };
      throw refusal(work, 'heartbeat', result);
    },

    async finish(work, receipt) {
      const result = await client.call(masterContract.workFinished, { body: { ...lease(work), ...(receipt ? { receipt } : {}) } });
      if (result.status !== 200) throw refusal(work, 'workFinished', result);
    },

    async fail(work, reason) {
      const result = await client.call(masterContract.workFailed, { body: withReason(work, reason) });
      if (result.status !== 200) throw refusal(work, 'workFailed', result);
    },

    async release(work, reason) {
      const result = await client.call(masterContract.workReleased, { body: withReason(work, reason) });
      if (result.status !== 200) throw refusal(work, 'workReleased', result);
    },

    async ping({ signal, timeoutMs } = {}) {
      // The contract has no other answer: anything else throws in the client.
      await client.call(commonContract.health, { signal, timeoutMs });
    },
  };
}
