import {
  taskdbContract,
  type ChangeStateBody,
  type Claim,
  type CreateTaskBody,
  type Housekeeping,
  type HousekeepingDone,
  type Task,
  type TaskDetail,
  type TaskState,
  type Usage,
} from '@pixelmill/contracts';
import { AppError, downstreamError, expectStatus, type ContractClient } from '@pixelmill/kit';
import { imageExpired } from '../domain/image-errors';

export type { Claim, Housekeeping, Task };

/**
 * What taskdb made of a create: a new task, the task an earlier create with the same id or key
 * made, or a refusal (a quota, a key used with other bytes) that certainly created nothing.
 */
/** What taskdb has of a task: the task, nothing, or the record of one past its retention (its bytes deleted). */
export type TaskLookup = { kind: 'found'; task: Task } | { kind: 'missing' } | { kind: 'expired' };

/** A page of tasks in one state, and where the next one starts (null: none). */
export interface TaskDetailPage {
  tasks: TaskDetail[];
  nextCursor: string | null;
}

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

  /** The task, whether taskdb has none with this id, or whether it expired. */
  async find(id: string): Promise<TaskLookup> {
    const result = await this.client.call(taskdbContract.get, { params: { id } });
    switch (result.status) {
      case 200:
        return { kind: 'found', task: result.body };
      case 404:
        return { kind: 'missing' };
      case 410:
        return { kind: 'expired' };
      default:
        throw downstreamError(result, 'taskdb');
    }
  }

  /** A page of the tasks in a state, oldest first, after `cursor` (the last page's `nextCursor`). */
  async list(state: TaskState, limit: number, cursor?: string): Promise<TaskDetailPage> {
    const query = { state, limit, cursor, view: 'tasks' as const };
    const { body } = expectStatus(await this.client.call(taskdbContract.list, { query }), 200, 'taskdb');
    // A taskdb older than view=tasks answers the ids alone.
    if (body.tasks === undefined)
      throw new AppError('unavailable', 503, 'taskdb answered task ids without the tasks: it is older than master');
    return { tasks: body.tasks, nextCursor: body.nextCursor };
  }

  /** Retries a failed task (an operator's move); refused unless it ended at `endedAfter` or later. */
  async retry(id: string, endedAfter: number): Promise<TaskDetail> {
    const body = { endedAfter: new Date(endedAfter).toISOString() };
    return expectStatus(await this.client.call(taskdbContract.retry, { params: { id }, body }), 200, 'taskdb').body;
  }

  /** Ends a waiting task failed with `reason` (an operator's move); the same again answers the task. */
  async cancel(id: string, reason: string): Promise<TaskDetail> {
    return expectStatus(await this.client.call(taskdbContract.cancel, { params: { id }, body: { reason } }), 200, 'taskdb').body;
  }

  /** Deletes the task's record; false when taskdb had none. */
  async remove(id: string): Promise<boolean> {
    const result = await this.client.call(taskdbContract.remove, { params: { id } });
    if (result.status === 204) return true;
    if (result.status === 404) return false;
    throw downstreamError(result, 'taskdb');
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
