import { randomUUID } from 'node:crypto';
import {
  TASK_TRANSITIONS,
  type Claim,
  type ChangeStateBody,
  type CreateTaskBody,
  type Task,
  type TaskState,
} from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import { toTask, type TaskRecord, type TaskRepository } from '../data-access/task-repository';

const isFinal = (state: TaskState): boolean => TASK_TRANSITIONS[state].length === 0;

export interface TaskServiceOptions {
  /** Claims a task may have; an expired lease on the last one ends it as failed. */
  maxAttempts: number;
  now?: () => number;
}

export interface TaskPage {
  ids: string[];
  nextCursor: string | null;
}

/** The task state machine: creation, transitions, claims with leases, and listings. */
export class TaskService {
  private readonly now: () => number;

  constructor(
    private readonly repository: TaskRepository,
    private readonly options: TaskServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  create(input: CreateTaskBody): Task {
    if (!this.repository.insert(input, this.now())) {
      throw new AppError('conflict', 409, `task ${input.id} exists already`);
    }
    return toTask(this.mustGet(input.id));
  }

  get(id: string): Task {
    return toTask(this.mustGet(id));
  }

  changeState(id: string, change: ChangeStateBody): Task {
    return this.repository.transaction(() => {
      const record = this.mustGet(id);
      const now = this.now();
      // Repeating the end of the same attempt is a success, so a retried request does no harm.
      if (record.state === change.to && isFinal(change.to) && this.sameAttempt(record, change.leaseToken)) {
        return toTask(record);
      }
      if (change.to === 'in_progress') {
        throw new AppError('conflict', 409, 'a task enters in_progress only by a claim (POST /claims)');
      }
      this.assertTransition(record, change.to);
      if (record.state === 'in_progress' && change.leaseToken !== undefined && change.leaseToken !== record.leaseToken) {
        throw new AppError('conflict', 409, `the lease of task ${id} belongs to a newer attempt`);
      }
      const keepsLeaseToken = change.to === 'finished' || change.to === 'failed';
      return toTask(
        this.repository.update(
          record,
          {
            state: change.to,
            error: change.to === 'failed' ? (change.error ?? 'failed without a reason') : null,
            leaseToken: keepsLeaseToken ? record.leaseToken : null,
            leaseExpiresAt: null,
          },
          now,
        ),
      );
    });
  }

  /**
   * Claims the oldest claimable task: first a task whose lease expired (its worker is gone),
   * else the oldest not started. An expired task on its last attempt ends as failed instead.
   */
  claim(leaseMs: number): Claim | undefined {
    return this.repository.transaction(() => {
      const now = this.now();
      for (;;) {
        const expired = this.repository.oldestExpired(now);
        if (expired && expired.attempt >= this.options.maxAttempts) {
          this.repository.update(
            expired,
            {
              state: 'failed',
              error: `gave up after ${expired.attempt} attempts: the last lease expired`,
              leaseToken: null,
              leaseExpiresAt: null,
            },
            now,
          );
          continue;
        }
        const record = expired ?? this.repository.oldestNotStarted();
        if (!record) return undefined;
        const leaseToken = randomUUID();
        const claimed = this.repository.update(
          record,
          { state: 'in_progress', attempt: record.attempt + 1, error: null, leaseToken, leaseExpiresAt: now + leaseMs },
          now,
        );
        const task = toTask(claimed);
        return { ...task, leaseToken, leaseExpiresAt: task.leaseExpiresAt! };
      }
    });
  }

  extendLease(id: string, leaseToken: string, leaseMs: number): Task {
    return this.repository.transaction(() => {
      const record = this.mustGet(id);
      if (record.state !== 'in_progress' || record.leaseToken !== leaseToken) {
        throw new AppError('conflict', 409, `task ${id} is not held with this lease (state ${record.state})`);
      }
      return toTask(this.repository.update(record, { state: 'in_progress', leaseExpiresAt: this.now() + leaseMs }, this.now()));
    });
  }

  list(state: TaskState, limit: number, cursor?: string): TaskPage {
    const rows = this.repository.listByState(state, cursor === undefined ? 0 : Number(cursor), limit + 1);
    const page = rows.slice(0, limit);
    return {
      ids: page.map((row) => row.id),
      nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null,
    };
  }

  private sameAttempt(record: TaskRecord, leaseToken: string | undefined): boolean {
    return leaseToken === undefined || leaseToken === record.leaseToken;
  }

  private assertTransition(record: TaskRecord, to: TaskState): void {
    if (!TASK_TRANSITIONS[record.state].includes(to)) {
      const allowed = TASK_TRANSITIONS[record.state];
      throw new AppError(
        'conflict',
        409,
        `task ${record.id} cannot go from ${record.state} to ${to}` +
          (allowed.length ? ` (allowed: ${allowed.join(', ')})` : ` (${record.state} is final)`),
      );
    }
  }

  private mustGet(id: string): TaskRecord {
    const record = this.repository.get(id);
    if (!record) throw new AppError('not_found', 404, `no task ${id}`);
    return record;
  }
}
