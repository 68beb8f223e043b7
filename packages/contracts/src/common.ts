import { z } from 'zod';
import { defineRoute, EMPTY } from './route';

/** Task ids are random UUIDs (v4), never counters. */
export const TaskIdSchema = z.uuidv4({ error: 'must be a UUID v4' });
export type TaskId = z.infer<typeof TaskIdSchema>;

export const TaskState = {
  NotStarted: 'not_started',
  InProgress: 'in_progress',
  Finished: 'finished',
  Failed: 'failed',
} as const;
export const TASK_STATES = [TaskState.NotStarted, TaskState.InProgress, TaskState.Finished, TaskState.Failed] as const;
export const TaskStateSchema = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskStateSchema>;

/**
 * The transitions taskdb allows a task's work (claims, and the reports of the worker holding it);
 * `finished` and `failed` are final to them.
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  not_started: ['in_progress'],
  in_progress: ['finished', 'failed', 'not_started'],
  finished: [],
  failed: [],
};

/**
 * The moves only an operator makes, through master's admin routes (taskdb has a route for each,
 * apart from the state changes workers' reports go through): a failed task is retried (back to
 * `not_started`, claimable at once), a waiting one cancelled (it ends `failed`). A task a worker
 * holds (`in_progress`) is never moved by an operator: its attempt ends by itself.
 */
export const OPERATOR_TRANSITIONS = {
  retry: { from: 'failed', to: 'not_started' },
  cancel: { from: 'not_started', to: 'failed' },
} as const satisfies Record<string, { from: TaskState; to: TaskState }>;

/** The error a cancelled task ends with. */
export const CANCELLED_ERROR = 'cancelled by an operator';

/** What a worker can do to an image, in the order the upload page offers them. */
export const OPERATIONS = [
  'swap-red-blue',
  'grayscale',
  'invert',
  'sepia',
  'flip',
  'mirror',
  'rotate-90',
  'rotate-180',
  'rotate-270',
  'blur',
  'resize',
] as const;

/**
 * The radius of `blur`, in pixels: fixed, so the same image always comes out the same. jimp's blur
 * divides by fixed-point tables; at 6 they keep every flat colour exactly as it was (at 5, jimp's
 * own example, flat areas of 228–254 come out one or two levels lighter).
 */
export const BLUR_RADIUS = 6;

/** The largest width or height `resize` makes, whether asked for or kept from the aspect ratio. */
export const MAX_RESIZE_SIDE = 8192;
/**
 * The most pixels `resize` makes: as many as the largest image an upload may declare (the
 * frontend's and the worker's default limit), so that a result is never larger than a source may be.
 */
export const MAX_RESIZE_PIXELS = 50_000_000;

/** What each operation does, in a phrase: for the OpenAPI documents and the upload page. */
export const OPERATION_DESCRIPTIONS: Readonly<Record<(typeof OPERATIONS)[number], string>> = {
  'swap-red-blue': 'the red and blue channels trade places',
  grayscale: 'shades of grey (the luma of each pixel, ITU-R BT.601 weights)',
  invert: 'a negative (each colour channel becomes 255 minus itself)',
  sepia: 'warm brown tones, as an old photograph',
  flip: 'upside down (the top row becomes the bottom one)',
  mirror: 'left and right trade places, as in a mirror',
  'rotate-90': 'a quarter turn clockwise (width and height trade places)',
  'rotate-180': 'a half turn',
  'rotate-270': 'three quarter turns clockwise, i.e. one anticlockwise (width and height trade places)',
  blur: `a soft blur of radius ${BLUR_RADIUS} pixels (jimp's fast blur, close to a Gaussian one)`,
  resize:
    // Plain text, no Markdown: the docs page shows these phrases as they are written.
    `a new size: width and/or height in pixels (1 to ${MAX_RESIZE_SIDE}); given one, the other keeps the aspect ratio`,
};

/**
 * Every operation keeps each pixel's alpha (moved with its pixel by flips and rotations, resampled
 * with the colours by resize), and the result keeps the input's type.
 */
export const OperationSchema = z.enum(OPERATIONS).meta({
  description: [
    'The operation applied to the image; transparency is kept (resampled with the colours by `resize`):',
    '',
    ...OPERATIONS.map((op) => `- \`${op}\`: ${OPERATION_DESCRIPTIONS[op]}`),
  ].join('\n'),
  'x-enumDescriptions': OPERATION_DESCRIPTIONS,
});
export type Operation = z.infer<typeof OperationSchema>;
export const DEFAULT_OPERATION: Operation = 'swap-red-blue';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/bmp', 'image/gif', 'image/tiff'] as const;
export const ImageTypeSchema = z.enum(IMAGE_TYPES);
export type ImageType = z.infer<typeof ImageTypeSchema>;

/** Where storage keeps an image: before the work (`inProgress`) and after it (`finished`). */
export const StorageStateSchema = z.enum(['inProgress', 'finished']);
export type StorageState = z.infer<typeof StorageStateSchema>;

export const SERVICE_NAMES = ['kv', 'taskdb', 'storage', 'master', 'frontend'] as const;
export const ServiceNameSchema = z.enum(SERVICE_NAMES);
export type ServiceName = z.infer<typeof ServiceNameSchema>;

export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'conflict',
  'gone',
  'payload_too_large',
  'uri_too_long',
  'unsupported_media_type',
  'unprocessable_entity',
  'headers_too_large',
  'too_many_requests',
  'quota_exceeded',
  'internal',
  'unavailable',
] as const;
export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

/** The one JSON error body every service answers with. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: ErrorCodeSchema,
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const TimestampSchema = z.iso.datetime();

export const IdQuerySchema = z.object({ id: TaskIdSchema });

/** Long poll of isReady: answer at once when finished or failed, else wait up to this long for it. */
export const StatusWaitSchema = z.coerce.number().int().min(0).max(30_000).default(0);
export const StatusQuerySchema = IdQuerySchema.extend({ waitMs: StatusWaitSchema });

/** Who created a task, as an opaque id (the frontend's hash of an API key); tasks are shown only to it. */
export const OwnerSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'letters, digits, "_" and "-" only');

/** A client's key that makes a retried upload return the first upload's task instead of a new one. */
export const IdempotencyKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
export const IdempotencyHeadersSchema = z.object({ 'idempotency-key': IdempotencyKeySchema.optional() });

/** What a client sees of a task: its state and, once failed, why. */
export const TaskStatusSchema = z.object({
  id: TaskIdSchema,
  state: TaskStateSchema,
  error: z.string().optional(),
});
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

export const AcceptedSchema = z.object({ id: TaskIdSchema, state: TaskStateSchema });
export type Accepted = z.infer<typeof AcceptedSchema>;

export const HealthSchema = z.object({ status: z.literal('ok'), service: z.string() });

/** What `/readyz` found of one dependency. Anything but `ok` leaves the service not ready. */
export const READY_CHECK_STATES = ['ok', 'failing', 'unauthorized'] as const;
export const ReadyCheckStateSchema = z.enum(READY_CHECK_STATES).meta({
  description:
    "`ok`: the dependency answers; another pixelmill service also accepts this service's token, or requires " +
    'none (one older than `GET /authz` answers 404 there and counts as `ok`). `failing`: it cannot be reached, ' +
    'or answers with an error or outside its contract. `unauthorized`: another pixelmill service answers but ' +
    "refuses this service's token (their INTERNAL_TOKEN differs, or this service has none): every call to it fails with 401.",
});
export type ReadyCheckState = z.infer<typeof ReadyCheckStateSchema>;

export const ReadySchema = z.object({
  status: z.enum(['ready', 'not_ready']).meta({
    description: '`ready` (with 200) when every check is `ok`; `not_ready` (with 503) otherwise',
  }),
  service: z.string(),
  checks: z.record(z.string(), ReadyCheckStateSchema).meta({
    description: 'Each dependency by name (a database, a folder or bucket, another pixelmill service), and what was found of it',
  }),
});

/**
 * An OpenAPI 3.1 document, checked only where every document agrees; the rest is described by the
 * specification itself.
 */
export const OpenApiDocumentSchema = z
  .object({
    openapi: z.string().regex(/^3\.1\.\d+$/),
    info: z.object({ title: z.string(), version: z.string() }).loose(),
    paths: z.record(z.string(), z.unknown()),
  })
  .loose();

/**
 * Prometheus's text format, as prom-client writes it. Not exported as a `…Schema`: a named schema
 * is documented as a JSON component, and this answer is text.
 */
const MetricsTextSchema = z.string().meta({ contentMediaType: 'text/plain; version=0.0.4; charset=utf-8' });

/** Routes every server answers. */
export const commonContract = {
  health: defineRoute({
    method: 'GET',
    path: '/healthz',
    summary: 'The process is alive',
    responses: { 200: HealthSchema },
  }),
  ready: defineRoute({
    method: 'GET',
    path: '/readyz',
    summary: 'The service and its dependencies are reachable, and the pixelmill services among them accept its token',
    responses: { 200: ReadySchema, 503: ReadySchema },
  }),
  authz: defineRoute({
    method: 'GET',
    path: '/authz',
    auth: 'internal',
    summary:
      "Whether this server accepts the caller's bearer token: 204 when it does, or when it requires none " +
      '(started without INTERNAL_TOKEN), 401 when it does not. ' +
      "Other services' /readyz call it. A server older than this route answers 404",
    responses: { 204: EMPTY, 401: ErrorBodySchema, 404: ErrorBodySchema },
  }),
  openapi: defineRoute({
    method: 'GET',
    path: '/openapi.json',
    summary: "This service's OpenAPI 3.1 document, generated from its contract",
    responses: { 200: OpenApiDocumentSchema },
  }),
  metrics: defineRoute({
    method: 'GET',
    path: '/metrics',
    auth: 'internal',
    summary:
      "This server's metrics for Prometheus: HTTP requests by method, route pattern and status, the process's " +
      "figures (CPU, memory, event loop, GC), and the service's own",
    responses: { 200: MetricsTextSchema },
  }),
} as const;
