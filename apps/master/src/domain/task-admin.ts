import { CANCELLED_ERROR, type TaskDetail, type TaskState, type TaskStatus } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import { taskObjects, type ImageStoreGateway } from '../data-access/image-store-gateway';
import type { TaskDetailPage, TaskGateway } from '../data-access/task-gateway';
import { imageExpired } from './image-errors';
import type { MasterMetrics } from './master-metrics';

/** The error a waiting task ends with when an operator deletes it (it is cancelled first). */
export const DELETED_ERROR = 'deleted by an operator';

/**
 * How long before the end of its retention a failed task is no longer retried: masters' clocks
 * (and settings) may differ a little, and a master's housekeeping may be deleting its files.
 */
export const RETRY_MARGIN_MS = 60_000;

export interface TaskAdminDeps {
  tasks: TaskGateway;
  store: ImageStoreGateway;
  /** How long an ended task's files and record are kept (RETENTION_HOURS). */
  retentionMs: number;
  /**
   * Where this master's waiting calls are woken (the ImageService): a retried task for getWork, a
   * cancelled one for isReady; other masters hear of both through taskdb's events. Its metrics
   * count the actions.
   */
  images: {
    readonly metrics: MasterMetrics;
    taskCreated(): void;
    taskEnded(status: TaskStatus): void;
  };
  now?: () => number;
}

const unknownTask = (id: string): AppError => new AppError('not_found', 404, `no task ${id}`);

/**
 * What operators do to tasks: list them by state, retry a failed one, cancel a waiting one,
 * delete one with its bytes. A task a worker holds (`in_progress`) is left alone: its attempt
 * ends by itself, within the attempt's time limit, and a worker still holding a signed URL could
 * store a result after its task was deleted, which nothing would ever delete.
 */
export class TaskAdmin {
  private readonly now: () => number;

  constructor(private readonly deps: TaskAdminDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** A page of the tasks in a state, oldest first, with what of their bytes is still stored. */
  list(state: TaskState, limit: number, cursor?: string): Promise<TaskDetailPage> {
    return this.deps.tasks.list(state, limit, cursor);
  }

  /**
   * Sends a failed task back to not_started: a worker claims it again, from its source, which a
   * failed task keeps until it expires. taskdb refuses a task in another state, one whose source
   * was deleted, or one so near the end of its retention that housekeeping may be deleting it.
   */
  async retry(id: string): Promise<TaskDetail> {
    const { tasks, store, images } = this.deps;
    const found = await tasks.find(id);
    if (found.kind === 'missing') throw unknownTask(id);
    if (found.kind === 'expired') throw imageExpired(id);
    // taskdb knows what housekeeping deleted; storage is asked too, for a source lost otherwise.
    if (found.task.state === 'failed' && !(await store.sourceStored(id))) {
      throw new AppError('conflict', 409, `task ${id} cannot be retried: its image is no longer stored; upload it again`);
    }
    const retried = await tasks.retry(id, this.now() - this.deps.retentionMs + RETRY_MARGIN_MS);
    images.metrics.adminAction('retry');
    images.taskCreated();
    return retried;
  }

  /** Ends a waiting task failed with CANCELLED_ERROR; the isReady calls waiting for it answer at once. */
  async cancel(id: string): Promise<TaskDetail> {
    const cancelled = await this.cancelWaiting(id, CANCELLED_ERROR);
    this.deps.images.metrics.adminAction('cancel');
    return cancelled;
  }

  /**
   * Deletes a task: its stored bytes (source and every attempt's result), then its record, so a
   * delete cut short is simply done again. A waiting task is cancelled first, so that no worker
   * claims it while its bytes go. Deleted, its id is unknown: deleting it again is a 404.
   */
  async delete(id: string): Promise<void> {
    const { tasks, store, images } = this.deps;
    const found = await tasks.find(id);
    if (found.kind === 'missing') throw unknownTask(id);
    // An expired task's bytes were deleted by housekeeping already: only its record is left.
    if (found.kind === 'found') {
      let task: { state: TaskState; attempt: number } = found.task;
      if (task.state === 'in_progress') {
        throw new AppError('conflict', 409, `task ${id} is in_progress: a worker holds it; delete it once its attempt has ended`);
      }
      if (task.state === 'not_started') task = await this.cancelWaiting(id, DELETED_ERROR);
      await store.deleteObjects(taskObjects(id, task.attempt));
    }
    // false: another delete of it came first, which is as good.
    await tasks.remove(id);
    images.metrics.adminAction('delete');
  }

  private async cancelWaiting(id: string, reason: string): Promise<TaskDetail> {
    const cancelled = await this.deps.tasks.cancel(id, reason);
    this.deps.images.taskEnded({ id, state: cancelled.state, ...(cancelled.error ? { error: cancelled.error } : {}) });
    return cancelled;
  }
}
