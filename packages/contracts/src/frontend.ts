import { z } from 'zod';
import {
  AcceptedSchema,
  ErrorBodySchema,
  IdempotencyHeadersSchema,
  IdQuerySchema,
  StatusQuerySchema,
  TaskStatusSchema,
} from './common';
import { BINARY, defineRoute } from './route';
import { NewImageQuerySchema } from './master';

/** Multipart form field that carries the image. */
export const UPLOAD_FIELD = 'image';

export const frontendContract = {
  page: defineRoute({
    method: 'GET',
    path: '/',
    summary: 'The upload page (HTML); with ?id= it shows that image’s state and result',
    query: z.object({ id: z.string().optional() }),
    responses: { 200: z.string() },
  }),
  newImage: defineRoute({
    method: 'POST',
    path: '/newImage',
    summary:
      'Upload an image: multipart field "image" (optional field "op"), or a raw image/* body with ?op=. ' +
      'Browsers asking for HTML are redirected to the status page.',
    query: NewImageQuerySchema.partial(),
    headers: IdempotencyHeadersSchema,
    body: BINARY,
    responses: {
      202: AcceptedSchema,
      303: z.string(),
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
    summary:
      "An image's state: not_started, in_progress, finished or failed (with the reason); " +
      'with waitMs (up to 30000), the answer waits until the image is finished or failed, or waitMs has passed',
    query: StatusQuerySchema,
    responses: { 200: TaskStatusSchema, 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 410: ErrorBodySchema },
  }),
  get: defineRoute({
    method: 'GET',
    path: '/image/get',
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
