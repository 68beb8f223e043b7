import {
  taskdbContract,
  type ChangeStateBody,
  type Claim,
  type CreateTaskBody,
  type Housekeeping,
  type HousekeepingDone,
  type Task,
  type Usage,
} from '@pixelmill/contracts';
import { AppError, downstreamError, expectStatus, type ContractClient } from '@pixelmill/kit';
import { imageExpired } from '../domain/image-errors';

export type { Claim, Housekeeping, Task };

/**
 * What taskdb made of a create: a new task, the task an earlier create with the same id or key
 * made, or a refusal (a quota, a key used with other bytes) that certainly created nothing.
 */
export type CreateOutcome = { kind: 'created'; task: Task } | { kind: 'existing'; task: Task } | { kind: 'refused'; error: AppError };

/**
 * Master's only way to taskdb: its calls, with taskdb's answers mapped to domain results. taskdb's
 * refusals of a change (an unknown task, a stale lease, an illegal transition) come as the same
 * AppError, so master passes them on; an answer that cannot be one is a 503.
 */
export class TaskGateway {
  constructor(private readonly client: ContractClient) {}

  /** Throws only when taskdb could not say (unreachable): the task may then exist or not. */
  async create(task: CreateTaskBody): Promise<CreateOutcome> {
    const result = await this.client.call(taskdbContract.create, { body: task });
    switch (result.status) {
      case 201:
        return { kind: 'created', task: result.body };
      case 200:
        return { kind: 'existing', task: result.body };
      default:
        return { kind: 'refused', error: downstreamError(result, 'taskdb') };
    }
  }

  /** The task, or undefined when taskdb has none with this id; one past its retention is a 410. */
  async get(id: string): Promise<Task | undefined> {
    const result = await this.client.call(taskdbContract.get, { params: { id } });
    switch (result.status) {
      case 200:
        return result.body;
      case 404:
        return undefined;
      case 410:
        throw imageExpired(id);
      default:
        throw downstreamError(result, 'taskdb');
    }
  }

  /** The oldest claimable task, now leased for `leaseMs`; undefined when there is none. */
  async claim(leaseMs: number): Promise<Claim | undefined> {
    const result = await this.client.call(taskdbContract.claim, { body: { leaseMs } });
    if (result.status === 200) return result.body;
    if (result.status === 204) return undefined;
    throw downstreamError(result, 'taskdb');
  }

  async extendLease(id: string, leaseToken: string, leaseMs: number): Promise<Task> {
    return expectStatus(
      await this.client.call(taskdbContract.extendLease, { params: { id }, body: { leaseToken, leaseMs } }),
      200,
      'taskdb',
    ).body;
  }

  async changeState(id: string, change: ChangeStateBody): Promise<Task> {
    return expectStatus(await this.client.call(taskdbContract.changeState, { params: { id }, body: change }), 200, 'taskdb').body;
  }

  /** The bytes an owner has stored (no owner: the clients without an API key). */
  async usage(owner: string | undefined): Promise<Usage> {
    return expectStatus(await this.client.call(taskdbContract.usage, { query: { owner } }), 200, 'taskdb').body;
  }

  /** A batch of what to delete: sources of ended tasks, and tasks that ended before `expireBefore`. */
  async housekeeping(expireBefore: number, limit: number): Promise<Housekeeping> {
    const query = { expireBefore: new Date(expireBefore).toISOString(), limit };
    return expectStatus(await this.client.call(taskdbContract.housekeeping, { query }), 200, 'taskdb').body;
  }

  /** Records the deletions done; answers how many changed something (the rest were recorded before). */
  async housekeepingDone(done: HousekeepingDone): Promise<{ sourcesDeleted: number; expired: number }> {
    return expectStatus(await this.client.call(taskdbContract.housekeepingDone, { body: done }), 200, 'taskdb').body;
  }
}
