import { z } from 'zod';
import {
  CANCELLED_ERROR,
  ErrorBodySchema,
  IdempotencyKeySchema,
  ImageTypeSchema,
  OwnerSchema,
  OperationSchema,
  TaskIdSchema,
  TaskStateSchema,
  TimestampSchema,
} from './common';
import { OperationParamsSchema, refineOperationParams } from './operation-params';
import { defineRoute, EMPTY } from './route';

export const LeaseTokenSchema = z.uuid({ error: 'must be a UUID' });

export const TaskSchema = z.object({
  id: TaskIdSchema,
  op: OperationSchema,
  /** The operation's parameters (resize: its width, height or both); null when it takes none. Absent from an older taskdb's answers. */
  params: OperationParamsSchema.nullable().default(null),
  contentType: ImageTypeSchema,
  state: TaskStateSchema,
  /** How many times the task has been claimed. */
  attempt: z.number().int().nonnegative(),
  error: z.string().nullable(),
  owner: OwnerSchema.nullable(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  leaseExpiresAt: TimestampSchema.nullable(),
  /** Bytes of the uploaded image. */
  sourceBytes: z.number().int().nonnegative(),
  /** Bytes of the result, once finished. */
  resultBytes: z.number().int().nonnegative().nullable(),
  /**
   * The size the upload's header declares, when it could be read: results must have the size the
   * operation makes of it (`resultDimensions`).
   */
  width: z.number().int().positive().nullable(),
  height: z.number().int().positive().nullable(),
});
export type Task = z.infer<typeof TaskSchema>;

/** A task as an operator sees it: the task, and what of its bytes is still stored. */
export const TaskDetailSchema = TaskSchema.extend({
  /** The uploaded image is still stored: a failed task can be retried. */
  sourceStored: z.boolean(),
  /** When its files were deleted after the retention time (it answers 410 since then); null while they are kept. */
  expiredAt: TimestampSchema.nullable(),
});
export type TaskDetail = z.infer<typeof TaskDetailSchema>;

/** SHA-256 (hex) of what a task was created from: an Idempotency-Key is bound to it. */
export const FingerprintSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');

/** A claimed task: the holder proves it owns the current attempt with the lease token. */
export const ClaimSchema = TaskSchema.extend({
  leaseToken: LeaseTokenSchema,
  leaseExpiresAt: TimestampSchema,
});
export type Claim = z.infer<typeof ClaimSchema>;

export const TaskIdParamsSchema = z.object({ id: TaskIdSchema });

export const CreateTaskBodySchema = z
  .object({
    id: TaskIdSchema,
    op: OperationSchema,
    /** The operation's parameters: with `resize`, its width, height or both; none with the others. */
    params: OperationParamsSchema.optional(),
    contentType: ImageTypeSchema,
    owner: OwnerSchema.optional(),
    /**
     * A task created before with this key (and owner) is answered instead of a new one, when it was
     * created from the same `fingerprint`; another fingerprint under the same key is a 422.
     */
    idempotencyKey: IdempotencyKeySchema.optional(),
    fingerprint: FingerprintSchema.optional(),
    sourceBytes: z.number().int().nonnegative().default(0),
    width: z.number().int().positive().optional(),
    height: z.number().int().positive().optional(),
    /** The owner's cap on stored bytes: a create that would pass it is refused with 429, atomically. */
    quotaBytes: z.number().int().nonnegative().optional(),
  })
  .superRefine(refineOperationParams(({ params }) => params ?? {}, ['params']));
export type CreateTaskBody = z.infer<typeof CreateTaskBodySchema>;

export const LeaseMsSchema = z.number().int().min(1000).max(3_600_000);

export const ChangeStateBodySchema = z.object({
  to: TaskStateSchema,
  /** Why the task failed, or why the attempt was given back (`not_started`); kept on the task. */
  error: z.string().max(2000).optional(),
  /** Required when leaving `in_progress`: only the current lease holder may end an attempt. */
  leaseToken: LeaseTokenSchema.optional(),
  /** Bytes of the stored result, with `to: finished`; counted against the owner's quota. */
  resultBytes: z.number().int().nonnegative().optional(),
});
export type ChangeStateBody = z.infer<typeof ChangeStateBodySchema>;

export const ListTasksQuerySchema = z.object({
  state: TaskStateSchema,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** Opaque cursor from the previous page's `nextCursor` (a task's sequence number: at most 16 digits). */
  cursor: z
    .string()
    .regex(/^\d{1,16}$/, 'must be a cursor returned by a previous page')
    .optional(),
  /** `tasks`: the page also carries the tasks themselves, as `tasks`; `ids` (the default): their ids alone. */
  view: z.enum(['ids', 'tasks']).default('ids'),
});

export const TaskListSchema = z.object({
  ids: z.array(TaskIdSchema),
  nextCursor: z.string().nullable(),
  /** With `view=tasks`: the tasks of `ids`, in the same order. */
  tasks: z.array(TaskDetailSchema).optional(),
});

export const RetryTaskBodySchema = z.object({
  /**
   * Refused (409) when the task ended before this time: housekeeping may be deleting its files
   * as their retention runs out (master sends the retention's start, with a margin).
   */
  endedAfter: TimestampSchema.optional(),
});

export const CancelTaskBodySchema = z.object({
  /** The error the task ends with; a task cancelled with it before is answered as it is. */
  reason: z.string().min(1).max(2000).default(CANCELLED_ERROR),
});

export const ClaimBodySchema = z.object({ leaseMs: LeaseMsSchema });

export const ExtendLeaseBodySchema = z.object({ leaseToken: LeaseTokenSchema, leaseMs: LeaseMsSchema });

export const UsageQuerySchema = z.object({ owner: OwnerSchema.optional() });
export const UsageSchema = z.object({
  owner: OwnerSchema.nullable(),
  /**
   * Bytes stored for the owner's tasks: sources until their task finishes (a failed task's until it
   * expires, so that it can be retried), and results until they expire.
   */
  storedBytes: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

export const HousekeepingQuerySchema = z.object({
  /** Ended tasks whose last change is older than this expire. */
  expireBefore: TimestampSchema,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * What to delete from storage: sources of finished tasks, and everything of expired ones (results
 * per attempt). A failed task's source is kept until it expires, for an operator's retry.
 */
export const HousekeepingSchema = z.object({
  sources: z.array(TaskIdSchema),
  expired: z.array(z.object({ id: TaskIdSchema, attempt: z.number().int().nonnegative() })),
});
export type Housekeeping = z.infer<typeof HousekeepingSchema>;

/** Reports the deletions done: the tasks' bytes stop counting, and expired ids answer 410. */
export const HousekeepingDoneSchema = z.object({
  sourcesDeleted: z.array(TaskIdSchema).max(1000),
  expired: z.array(TaskIdSchema).max(1000),
});
export type HousekeepingDone = z.infer<typeof HousekeepingDoneSchema>;

/**
 * What happened to tasks, as taskdb tells masters so that their waiting calls wake at once: a
 * `getWork` on a new task (or a retried one), an `isReady` on its task's end. With several taskdb
 * instances on one PostgreSQL, each instance hears every other's events (LISTEN/NOTIFY).
 */
export const TaskEventSchema = z.discriminatedUnion('kind', [
  /** A task to claim: a new one, or one an operator retried. */
  z.object({ kind: z.literal('created'), id: TaskIdSchema }),
  z.object({
    kind: z.literal('ended'),
    id: TaskIdSchema,
    state: z.enum(['finished', 'failed']),
    error: z.string().nullable(),
  }),
]);
export type TaskEvent = z.infer<typeof TaskEventSchema>;

/** The most events one answer carries; a caller further behind gets `reset`. */
export const MAX_TASK_EVENTS = 1000;

export const TaskEventsQuerySchema = z.object({
  /** The `cursor` of the previous answer; absent on the first call (answers at once with the current cursor). */
  after: z.string().min(1).max(100).optional(),
  /** How long to wait for an event after the cursor before answering with none. */
  waitMs: z.coerce.number().int().min(0).max(30_000).default(20_000),
});

export const TaskEventsSchema = z.object({
  /** Where the next call continues; only meaningful to the instance that gave it. */
  cursor: z.string().min(1).max(100),
  events: z.array(TaskEventSchema).max(MAX_TASK_EVENTS),
  /**
   * True when events after `after` may have been missed (another instance's cursor, a restart, or
   * more than MAX_TASK_EVENTS behind): the caller rechecks whatever it waits for.
   */
  reset: z.boolean(),
});
export type TaskEvents = z.infer<typeof TaskEventsSchema>;

export const taskdbContract = {
  create: defineRoute({
    method: 'POST',
    path: '/tasks',
    auth: 'internal',
    idempotent: true,
    summary: 'Create a task in state not_started; 200 with the existing task when the same id or idempotency key was created before',
    body: CreateTaskBodySchema,
    responses: {
      200: TaskSchema,
      201: TaskSchema,
      400: ErrorBodySchema,
      409: ErrorBodySchema,
      422: ErrorBodySchema,
      429: ErrorBodySchema,
    },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/tasks/:id',
    auth: 'internal',
    summary: 'Get a task; 410 once it has expired',
    params: TaskIdParamsSchema,
    responses: { 200: TaskSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  changeState: defineRoute({
    method: 'POST',
    path: '/tasks/:id/state',
    auth: 'internal',
    idempotent: true,
    summary: 'Move a task to another state; illegal transitions and stale leases are refused with 409',
    params: TaskIdParamsSchema,
    body: ChangeStateBodySchema,
    responses: { 200: TaskSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  list: defineRoute({
    method: 'GET',
    path: '/tasks',
    auth: 'internal',
    summary: 'List task ids in a state (with view=tasks, the tasks too), oldest first, a page at a time',
    query: ListTasksQuerySchema,
    responses: { 200: TaskListSchema, 400: ErrorBodySchema },
  }),
  retry: defineRoute({
    method: 'POST',
    path: '/tasks/:id/retry',
    auth: 'internal',
    summary:
      "An operator's retry: a failed task whose image is still stored goes back to not_started, claimable at once, its error " +
      'cleared and its lost attempts counted from zero again (the attempt number goes on). 409 for a task in another state, ' +
      'or whose image was deleted; 410 once it expired',
    params: TaskIdParamsSchema,
    body: RetryTaskBodySchema,
    responses: { 200: TaskDetailSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  cancel: defineRoute({
    method: 'POST',
    path: '/tasks/:id/cancel',
    auth: 'internal',
    idempotent: true,
    summary:
      "An operator's cancel: a waiting (not_started) task ends failed with the reason, and its waiting calls are told. " +
      '409 for a task in another state (one a worker holds is not cancelled); a task cancelled with the same reason before is answered as it is',
    params: TaskIdParamsSchema,
    body: CancelTaskBodySchema,
    responses: { 200: TaskDetailSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  remove: defineRoute({
    method: 'DELETE',
    path: '/tasks/:id',
    auth: 'internal',
    summary:
      "Delete a task's record (its stored bytes are the caller's to delete first); its bytes stop counting for its owner and its id " +
      'is unknown from then on. 409 for a task a worker holds (in_progress)',
    params: TaskIdParamsSchema,
    responses: { 204: EMPTY, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  claim: defineRoute({
    method: 'POST',
    path: '/claims',
    auth: 'internal',
    summary: 'Atomically claim the oldest claimable task with a lease; 204 when there is none',
    body: ClaimBodySchema,
    responses: { 200: ClaimSchema, 204: EMPTY, 400: ErrorBodySchema },
  }),
  extendLease: defineRoute({
    method: 'POST',
    path: '/tasks/:id/lease',
    auth: 'internal',
    idempotent: true,
    summary: 'Extend the lease of the current attempt',
    params: TaskIdParamsSchema,
    body: ExtendLeaseBodySchema,
    responses: { 200: TaskSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  usage: defineRoute({
    method: 'GET',
    path: '/usage',
    auth: 'internal',
    summary: "An owner's stored bytes (no owner: the anonymous clients')",
    query: UsageQuerySchema,
    responses: { 200: UsageSchema, 400: ErrorBodySchema },
  }),
  events: defineRoute({
    method: 'GET',
    path: '/events',
    auth: 'internal',
    summary: 'Wait for task events after a cursor (long poll): new tasks and ended ones, from every taskdb instance',
    query: TaskEventsQuerySchema,
    responses: { 200: TaskEventsSchema, 400: ErrorBodySchema, 503: ErrorBodySchema },
  }),
  housekeeping: defineRoute({
    method: 'GET',
    path: '/housekeeping',
    auth: 'internal',
    summary:
      'A batch of stored bytes to delete: sources of finished tasks, and tasks past their retention ' +
      "(a failed task's source is kept until then, for a retry)",
    query: HousekeepingQuerySchema,
    responses: { 200: HousekeepingSchema, 400: ErrorBodySchema },
  }),
  housekeepingDone: defineRoute({
    method: 'POST',
    path: '/housekeeping',
    auth: 'internal',
    idempotent: true,
    summary: 'Record deleted sources and expired tasks',
    body: HousekeepingDoneSchema,
    responses: { 200: z.object({ sourcesDeleted: z.number().int(), expired: z.number().int() }), 400: ErrorBodySchema },
  }),
} as const;
