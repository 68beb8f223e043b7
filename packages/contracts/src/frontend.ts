import { z } from 'zod';
import {
  AcceptedSchema,
  DEFAULT_OPERATION,
  IMAGE_TYPES,
  OperationSchema,
  ErrorBodySchema,
  IdempotencyHeadersSchema,
  IdQuerySchema,
  StatusQuerySchema,
  TaskStatusSchema,
} from './common';
import { BINARY, defineRoute, STREAM } from './route';
import { NewImageQuerySchema } from './master';
import { OperationParamsFieldsSchema } from './operation-params';

/** Multipart form field that carries the image. */
export const UPLOAD_FIELD = 'image';
/** The header an API key may come in besides `Authorization: Bearer`, for clients that keep Authorization for something else. */
export const API_KEY_HEADER = 'x-api-key';
/** The upload form's field for the API key: a form posted without JavaScript cannot send headers. */
export const API_KEY_FIELD = 'apiKey';

/** The upload as a multipart form (what the upload page posts); the fields before the image are read first. */
export const UploadFormSchema = z.object({
  [API_KEY_FIELD]: z
    .string()
    .optional()
    .meta({ description: 'The API key, for a form that cannot send it in a header; it must come before the image' }),
  op: OperationSchema.optional().meta({ description: `${OperationSchema.description}\n\n\`${DEFAULT_OPERATION}\` when absent.` }),
  // Before the image too: the image goes on as it arrives once the request is known.
  width: OperationParamsFieldsSchema.shape.width.meta({
    description: `${OperationParamsFieldsSchema.shape.width.description}. It must come before the image; an empty field counts as absent`,
  }),
  height: OperationParamsFieldsSchema.shape.height.meta({
    description: `${OperationParamsFieldsSchema.shape.height.description}. It must come before the image; an empty field counts as absent`,
  }),
  [UPLOAD_FIELD]: z
    .file()
    .mime([...IMAGE_TYPES])
    .meta({ description: 'The image file' }),
});

/** An HTML page, served as text/html. */
const HtmlPageSchema = z.string().meta({ contentMediaType: 'text/html' });

export const frontendContract = {
  page: defineRoute({
    method: 'GET',
    path: '/',
    summary: 'The upload page (HTML); with ?id= it shows that image’s state and result',
    query: z.object({ id: z.string().optional() }),
    responses: { 200: HtmlPageSchema },
  }),
  docs: defineRoute({
    method: 'GET',
    path: '/docs',
    summary: 'This API’s interactive documentation (an HTML page over /openapi.json)',
    responses: { 200: HtmlPageSchema },
  }),
  newImage: defineRoute({
    method: 'POST',
    path: '/newImage',
    auth: 'apiKey',
    summary:
      'Upload an image: multipart field "image" (optional fields "op", and "width" and/or "height" for resize, ' +
      'before it), or a raw image/* body with ?op= (and ?width=, ?height=). A field of the form wins over the query parameter. ' +
      'Browsers asking for HTML are redirected to the status page.',
    query: NewImageQuerySchema.partial(),
    headers: IdempotencyHeadersSchema,
    body: STREAM,
    form: UploadFormSchema,
    responses: {
      202: AcceptedSchema,
      303: z.string().meta({ contentMediaType: 'text/plain' }),
      /** No image, a malformed request, an unknown op, or width and height that do not go with the op or make too large a result. */
      400: ErrorBodySchema,
      401: ErrorBodySchema,
      413: ErrorBodySchema,
      415: ErrorBodySchema,
      /** The Idempotency-Key was used before with another image or operation. */
      422: ErrorBodySchema,
      /** Too many uploads (too_many_requests, with Retry-After), or the storage quota used up (quota_exceeded). */
      429: ErrorBodySchema,
    },
  }),
  isReady: defineRoute({
    method: 'GET',
    path: '/image/isReady',
    auth: 'apiKey',
    summary:
      "An image's state: not_started, in_progress, finished or failed (with the reason); " +
      'with waitMs (up to 30000), the answer waits until the image is finished or failed, or waitMs has passed',
    query: StatusQuerySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/image/get',
    auth: 'apiKey',
    summary: 'The finished image, in the format it was uploaded in',
    query: IdQuerySchema,
    responses: {
      200: BINARY,
      400: ErrorBodySchema,
      401: ErrorBodySchema,
      404: ErrorBodySchema,
      409: ErrorBodySchema,
      /** Expired: its files were deleted after the retention time. */
      410: ErrorBodySchema,
    },
  }),
} as const;
