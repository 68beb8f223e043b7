import { z } from 'zod';
import {
  AcceptedSchema,
  CANCELLED_ERROR,
  ErrorBodySchema,
  IdQuerySchema,
  IdempotencyHeadersSchema,
  StatusWaitSchema,
  ImageTypeSchema,
  OwnerSchema,
  OperationSchema,
  TaskIdSchema,
  TaskStatusSchema,
  TimestampSchema,
  DEFAULT_OPERATION,
} from './common';
import { OperationParamsFieldsSchema, OperationParamsSchema, refineOperationParams } from './operation-params';
import { BINARY, defineRoute, EMPTY, STREAM } from './route';
import { StorageReceiptSchema } from './storage';
import { ListTasksQuerySchema, LeaseTokenSchema, TaskDetailSchema, TaskIdParamsSchema } from './taskdb';

/**
 * An upload's operation and its parameters (`width`, `height` with `resize`). Which parameters go
 * with which operation is checked where the query is parsed whole (see `masterContract.newImage`).
 */
export const NewImageQuerySchema = z.object({
  op: OperationSchema.default(DEFAULT_OPERATION),
  ...OperationParamsFieldsSchema.shape,
});

/** The frontend names the task's owner when it uses API keys; others then see 404. */
export const OwnerQuerySchema = z.object({ owner: OwnerSchema.optional() });
export const OwnedIdQuerySchema = IdQuerySchema.extend(OwnerQuerySchema.shape);
export const OwnedStatusQuerySchema = OwnedIdQuerySchema.extend({ waitMs: StatusWaitSchema });

export const GetWorkQuerySchema = z.object({
  /** Long poll: how long to wait for a task before answering 204. */
  waitMs: z.coerce.number().int().min(0).max(60_000).default(0),
});

/** A task handed to a worker, with what it needs to fetch the source and prove its lease. */
export const WorkSchema = z.object({
  id: TaskIdSchema,
  op: OperationSchema,
  /** Present when the operation takes parameters (resize: its width, height or both). */
  params: OperationParamsSchema.optional(),
  contentType: ImageTypeSchema,
  attempt: z.number().int().positive(),
  leaseToken: LeaseTokenSchema,
  leaseExpiresAt: TimestampSchema,
  /** Signed, short-lived URL to GET the source image from storage: no storage credential needed. */
  sourceUrl: z.url({ protocol: /^https?$/ }),
  /**
   * Signed URL to POST the result to storage, under this attempt's own key; it expires with the
   * lease, and each heartbeat answers a new one.
   */
  resultUrl: z.url({ protocol: /^https?$/ }),
});
export type Work = z.infer<typeof WorkSchema>;

export const WorkFinishedBodySchema = z.object({
  id: TaskIdSchema,
  leaseToken: LeaseTokenSchema,
  /**
   * The receipt of storage's answer to the result's upload, as it came: master checks it (its
   * signature, this attempt's key, not expired, the type, dimensions and size) instead of reading
   * the result back from storage. Without one (a storage that runs open, an older worker) master
   * reads the result's head from storage, as before.
   */
  receipt: StorageReceiptSchema.optional(),
});
export const WorkFailedBodySchema = z.object({
  id: TaskIdSchema,
  leaseToken: LeaseTokenSchema,
  reason: z.string().min(1).max(2000),
});
export const WorkReleasedBodySchema = z.object({
  id: TaskIdSchema,
  leaseToken: LeaseTokenSchema,
  reason: z.string().min(1).max(2000),
});
export const HeartbeatBodySchema = z.object({ id: TaskIdSchema, leaseToken: LeaseTokenSchema });
export const HeartbeatSchema = z.object({
  id: TaskIdSchema,
  leaseExpiresAt: TimestampSchema,
  /**
   * A new signed URL for the result, valid until the extended lease ends: the one a claim hands out
   * expires with that claim's lease, so a worker whose lease was lost soon holds no valid URL.
   */
  resultUrl: z.url({ protocol: /^https?$/ }).optional(),
});

export const UsageReportSchema = z.object({
  owner: OwnerSchema.nullable(),
  /**
   * Bytes stored for the owner's images: sources until their task finishes (a failed task's until
   * it expires, for a retry), results until they expire.
   */
  storedBytes: z.number().int().nonnegative(),
  /** The owner's cap; null when there is none. */
  quotaBytes: z.number().int().nonnegative().nullable(),
});
export type UsageReport = z.infer<typeof UsageReportSchema>;

export const masterContract = {
  newImage: defineRoute({
    method: 'POST',
    path: '/newImage',
    auth: 'internal',
    summary: 'Store a new image (raw body, image/* Content-Type) and create its task',
    // width and height go with resize only, and resize needs one of them: a 400 otherwise.
    query: NewImageQuerySchema.extend(OwnerQuerySchema.shape).superRefine(
      refineOperationParams(({ width, height }) => ({ width, height })),
    ),
    headers: IdempotencyHeadersSchema,
    body: STREAM,
    responses: {
      202: AcceptedSchema,
      /** A malformed query, parameters that do not go with the operation, or a resize whose result would be too large. */
      400: ErrorBodySchema,
      413: ErrorBodySchema,
      415: ErrorBodySchema,
      422: ErrorBodySchema,
      429: ErrorBodySchema,
      /** storage could not be reached, or broke off while the image streamed to it: send it again (with the same Idempotency-Key). */
      503: ErrorBodySchema,
    },
  }),
  isReady: defineRoute({
    method: 'GET',
    path: '/isReady',
    auth: 'internal',
    summary: "A task's state; with waitMs, answers once it is finished or failed, or when waitMs has passed",
    query: OwnedStatusQuerySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/get',
    auth: 'internal',
    summary: 'The finished image',
    query: OwnedIdQuerySchema,
    responses: { 200: BINARY, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  usage: defineRoute({
    method: 'GET',
    path: '/usage',
    auth: 'internal',
    summary: 'The bytes an owner has stored and its quota (no owner: the clients without an API key)',
    query: OwnerQuerySchema,
    responses: { 200: UsageReportSchema, 400: ErrorBodySchema },
  }),
  getWork: defineRoute({
    method: 'GET',
    path: '/getWork',
    auth: 'worker',
    summary: 'Claim the next task, waiting up to waitMs for one; 204 means no work to do',
    query: GetWorkQuerySchema,
    responses: { 200: WorkSchema, 204: EMPTY, 400: ErrorBodySchema },
  }),
  workFinished: defineRoute({
    method: 'POST',
    path: '/workFinished',
    auth: 'worker',
    idempotent: true,
    summary:
      "The result is stored at the work's resultUrl; master checks it (type, size) before the task ends finished: " +
      "from storage's receipt when the body carries one, else by reading the result's head from storage. " +
      'A receipt that is forged, altered, expired or of another task or attempt is a 422 and the task stays in progress. ' +
      'Repeating it with the same lease is a success',
    body: WorkFinishedBodySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema },
  }),
  workFailed: defineRoute({
    method: 'POST',
    path: '/workFailed',
    auth: 'worker',
    idempotent: true,
    summary: 'The task cannot be done (e.g. the image does not decode); it ends failed with the reason',
    body: WorkFailedBodySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  workReleased: defineRoute({
    method: 'POST',
    path: '/workReleased',
    auth: 'worker',
    idempotent: true,
    summary: 'Give the task back at once (shutdown, a passing error); it is retried after a backoff, within the attempt limit',
    body: WorkReleasedBodySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  heartbeat: defineRoute({
    method: 'POST',
    path: '/heartbeat',
    auth: 'worker',
    idempotent: true,
    summary: 'Extend the lease of the task in hand',
    body: HeartbeatBodySchema,
    responses: { 200: HeartbeatSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
} as const;

/** A page of tasks in one state, oldest first: `state`, `limit` (1–1000, default 100) and the previous page's `nextCursor`. */
export const AdminTaskListQuerySchema = ListTasksQuerySchema.omit({ view: true });

export const AdminTaskPageSchema = z.object({
  tasks: z.array(TaskDetailSchema),
  /** The `cursor` of the next page; null on the last one. */
  nextCursor: z.string().nullable(),
});
export type AdminTaskPage = z.infer<typeof AdminTaskPageSchema>;

/**
 * What operators do to tasks, on master behind the internal token. Retry, cancel and delete
 * never touch a task a worker holds (`in_progress`): its attempt ends by itself, within the
 * attempt's time limit.
 */
export const masterAdminContract = {
  listTasks: defineRoute({
    method: 'GET',
    path: '/admin/tasks',
    auth: 'internal',
    summary:
      'The tasks in a state, oldest first, a page at a time (follow nextCursor), expired ones included (with expiredAt): ' +
      'each with its operation, attempt, error, owner, times and sizes, and whether its image is still stored',
    query: AdminTaskListQuerySchema,
    responses: { 200: AdminTaskPageSchema, 400: ErrorBodySchema },
  }),
  retryTask: defineRoute({
    method: 'POST',
    path: '/admin/tasks/:id/retry',
    auth: 'internal',
    summary:
      'Retry a failed task: it goes back to not_started and a worker claims it again; its error is cleared, its attempt number ' +
      'goes on and its lost attempts count from zero. 409 for a task in another state, or whose image is no longer stored ' +
      '(a failed task keeps it until it expires); 410 once it expired',
    params: TaskIdParamsSchema,
    responses: { 200: TaskDetailSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  cancelTask: defineRoute({
    method: 'POST',
    path: '/admin/tasks/:id/cancel',
    auth: 'internal',
    idempotent: true,
    summary:
      `Cancel a waiting (not_started) task: it ends failed with the error "${CANCELLED_ERROR}", and the isReady calls waiting ` +
      'for it answer at once. 409 for a task in another state (one a worker holds ends by itself); cancelling again answers the cancelled task',
    params: TaskIdParamsSchema,
    responses: { 200: TaskDetailSchema, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
  deleteTask: defineRoute({
    method: 'DELETE',
    path: '/admin/tasks/:id',
    auth: 'internal',
    summary:
      "Delete a task and its stored bytes (its image and every attempt's result): its id is unknown (404) from then on, " +
      'so deleting it again answers 404. A waiting task is cancelled first, so no worker claims it meanwhile; ' +
      '409 for a task a worker holds (in_progress)',
    params: TaskIdParamsSchema,
    responses: { 204: EMPTY, 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema },
  }),
} as const;
