import { z } from 'zod';
import {
  ErrorBodySchema,
  IdempotencyKeySchema,
  ImageTypeSchema,
  OwnerSchema,
  OperationSchema,
  TaskIdSchema,
  TaskStateSchema,
  TimestampSchema,
} from './common';
import { defineRoute, EMPTY } from './route';

export const LeaseTokenSchema = z.uuid({ error: 'must be a UUID' });

export const TaskSchema = z.object({
  id: TaskIdSchema,
  op: OperationSchema,
  contentType: ImageTypeSchema,
  state: TaskStateSchema,
  /** How many times the task has been claimed. */
  attempt: z.number().int().nonnegative(),
  error: z.string().nullable(),
  owner: OwnerSchema.nullable(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  leaseExpiresAt: TimestampSchema.nullable(),
});
export type Task = z.infer<typeof TaskSchema>;

/** A claimed task: the holder proves it owns the current attempt with the lease token. */
export const ClaimSchema = TaskSchema.extend({
  leaseToken: LeaseTokenSchema,
  leaseExpiresAt: TimestampSchema,
});
export type Claim = z.infer<typeof ClaimSchema>;

export const TaskIdParamsSchema = z.object({ id: TaskIdSchema });

export const CreateTaskBodySchema = z.object({
  id: TaskIdSchema,
  op: OperationSchema,
  contentType: ImageTypeSchema,
  owner: OwnerSchema.optional(),
  /** A task created before with this key (and owner) is answered instead of a new one. */
  idempotencyKey: IdempotencyKeySchema.optional(),
});
export type CreateTaskBody = z.infer<typeof CreateTaskBodySchema>;

export const LeaseMsSchema = z.number().int().min(1000).max(3_600_000);

export const ChangeStateBodySchema = z.object({
  to: TaskStateSchema,
  /** Why the task failed, or why the attempt was given back (`not_started`); kept on the task. */
  error: z.string().max(2000).optional(),
  /** Required when leaving `in_progress`: only the current lease holder may end an attempt. */
  leaseToken: LeaseTokenSchema.optional(),
});
export type ChangeStateBody = z.infer<typeof ChangeStateBodySchema>;

export const ListTasksQuerySchema = z.object({
  state: TaskStateSchema,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor: z.string().regex(/^\d+$/, 'must be a cursor returned by a previous page').optional(),
});

export const TaskListSchema = z.object({
  ids: z.array(TaskIdSchema),
  nextCursor: z.string().nullable(),
});

export const ClaimBodySchema = z.object({ leaseMs: LeaseMsSchema });

export const ExtendLeaseBodySchema = z.object({ leaseToken: LeaseTokenSchema, leaseMs: LeaseMsSchema });

export const taskdbContract = {
  create: defineRoute({
    method: 'POST',
    path: '/tasks',
    auth: 'internal',
    idempotent: true,
    summary:
      'Create a task in state not_started; 200 with the existing task when the same id or idempotency key was created before',
    body: CreateTaskBodySchema,
    responses: { 200: TaskSchema, 201: TaskSchema, 400: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/tasks/:id',
    auth: 'internal',
    summary: 'Get a task',
    params: TaskIdParamsSchema,
    responses: { 200: TaskSchema, 400: ErrorBodySchema, 404: ErrorBodySchema },
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
    summary: 'List task ids in a state, oldest first, a page at a time',
    query: ListTasksQuerySchema,
    responses: { 200: TaskListSchema, 400: ErrorBodySchema },
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
} as const;
