import type { MasterApi } from '../data-access/master-api';
import { LeaseLostError } from '../domain/work-errors';

/**
 * Whether master answered the worker's last call that ended (a claim, a heartbeat, a report): what
 * `/readyz` tells of master. Every call is bounded by its timeout, so a master gone quiet shows as
 * a failed call within REQUEST_TIMEOUT_MS (a long poll: POLL_WAIT_MS more).
 */
export class MasterContact {
  /** Undefined until a call has ended. */
  private lastAnswered: boolean | undefined;

  /** True once a call failed, until the next one is answered. */
  get failing(): boolean {
    return this.lastAnswered === false;
  }

  /** Records how `call` ends; a call cut short by its own signal (a shutdown, a task that ended) says nothing of master. */
  watch<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return call().then(
      (value) => {
        this.lastAnswered = true;
        return value;
      },
      (err: unknown) => {
        // A lease master refused (404, 409) is an answer: the task is another's, master is fine.
        if (err instanceof LeaseLostError) this.lastAnswered = true;
        else if (!signal?.aborted) this.lastAnswered = false;
        throw err;
      },
    );
  }
}

/** `api` with each call's outcome recorded in `contact`. */
export function watchedMasterApi(api: MasterApi, contact: MasterContact): MasterApi {
  return {
    claimWork: (waitMs, options) => contact.watch(() => api.claimWork(waitMs, options), options?.signal),
    heartbeat: (work, options) => contact.watch(() => api.heartbeat(work, options), options?.signal),
    finish: (work, receipt) => contact.watch(() => api.finish(work, receipt)),
    fail: (work, reason) => contact.watch(() => api.fail(work, reason)),
    release: (work, reason) => contact.watch(() => api.release(work, reason)),
    ping: (options) => api.ping(options),
  };
}
