import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ZodError } from 'zod';
import type { ErrorBody, ErrorCode } from '@pixelmill/contracts';
import { closeAfterAnswer } from './connections';
import { sendJson } from './json-reply';
import type { Logger } from './logger';

/** The one error type of pixelmill: a code and status the client may see, and a message for humans. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export function describeZodError(err: ZodError, where?: string): string {
  return err.issues
    .map((issue) => {
      const path = [where, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Turns a ZodError of a request part into a 400 that says what was wrong where. */
export function invalidRequest(err: ZodError, where: string): AppError {
  return new AppError('bad_request', 400, `invalid request: ${describeZodError(err, where)}`, {
    issues: err.issues.map((issue) => ({ path: [where, ...issue.path.map(String)].join('.'), message: issue.message })),
  });
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  code?: string;
  name?: string;
  message?: string;
}

const MULTER_CODES: Record<string, [ErrorCode, number, string]> = {
  LIMIT_FILE_SIZE: ['payload_too_large', 413, 'the image is larger than the upload limit'],
  LIMIT_FIELD_VALUE: ['payload_too_large', 413, 'a form field is too long'],
  LIMIT_FILE_COUNT: ['bad_request', 400, 'only one image per upload'],
  LIMIT_UNEXPECTED_FILE: ['bad_request', 400, 'unexpected file field; send the image in the field "image"'],
  LIMIT_PART_COUNT: ['bad_request', 400, 'too many form parts'],
  LIMIT_FIELD_COUNT: ['bad_request', 400, 'too many form fields'],
  LIMIT_FIELD_KEY: ['bad_request', 400, 'a form field name is too long'],
};

/** Maps anything thrown to the contract's error body; unknown errors become a 500 with no internals. */
export function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) return new AppError('bad_request', 400, `invalid request: ${describeZodError(err)}`);
  const e = (err ?? {}) as HttpishError;
  if (e.name === 'MulterError' && e.code) {
    const [code, status, message] = MULTER_CODES[e.code] ?? ['bad_request', 400, e.message ?? 'bad upload'];
    return new AppError(code, status, message);
  }
  if (e.type === 'entity.parse.failed') return new AppError('bad_request', 400, 'malformed JSON body');
  if (e.type === 'entity.too.large') return new AppError('payload_too_large', 413, 'request body is larger than the limit');
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
    return new AppError('unsupported_media_type', 415, e.message ?? 'unsupported encoding');
  }
  const status = e.status ?? e.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code: ErrorCode =
      status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    return new AppError(code, status, e.expose && e.message ? e.message : 'bad request');
  }
  return null;
}

/**
 * Whether the client is gone (its connection closed, or its request cut off): then whatever
 * failed, failed for lack of someone to answer. An error code alone does not say so: a reset
 * may as well come from a service we called.
 */
function clientHungUp(req: Request, res: Response): boolean {
  // A request no longer on its socket (null) has been served or handed over: it is not a hang-up.
  return res.destroyed || req.socket?.destroyed === true || (req.destroyed && !req.complete);
}

/** What a 429 without a hint of its own tells the client to wait, in seconds. */
export const DEFAULT_RETRY_AFTER_SECONDS = 60;

const retryAfterOf = (err: AppError): number => {
  const hint = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  return typeof hint === 'number' && Number.isFinite(hint) && hint > 0 ? Math.ceil(hint) : DEFAULT_RETRY_AFTER_SECONDS;
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      // The answer is under way and cannot become an error answer: it is cut short, so the client
      // sees it incomplete. (Handing the error on to Express would print its stack to stderr,
      // outside the JSON log.)
      if (clientHungUp(req, res)) logger.info(`${req.method} ${req.path}: the client hung up before its answer was sent`);
      else logger.error(`${req.method} ${req.path} failed after its answer started`, err);
      res.destroy();
      return;
    }
    if (clientHungUp(req, res)) {
      // Whatever failed, it failed because the client went: there is no one to answer.
      logger.info(`${req.method} ${req.path}: the client hung up before its request was answered`);
      res.destroy();
      return;
    }
    // A body not read to its end (refused before it was read, or by its first bytes) is not
    // drained: the answer closes the connection, which costs the server nothing more.
    if (!req.complete) closeAfterAnswer(req, res);
    const appError = toAppError(err);
    if (appError) {
      if (appError.status >= 500) logger.error(`${req.method} ${req.path} failed: ${appError.message}`);
      // Every 429 says when to try again: the refusal's own hint, else a minute.
      if (appError.status === 429 && !res.hasHeader('retry-after')) res.setHeader('Retry-After', String(retryAfterOf(appError)));
      sendJson(res, appError.status, appError.toBody());
      return;
    }
    logger.error(`${req.method} ${req.path} failed`, err);
    sendJson(res, 500, new AppError('internal', 500, 'internal error').toBody());
  };
}

export function notFoundHandler(): RequestHandler {
  return (req) => {
    throw new AppError('not_found', 404, `no route ${req.method} ${req.path}`);
  };
}
