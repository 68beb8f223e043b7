import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { UPLOAD_FIELD } from '@pixelmill/contracts';
import { AppError, rawBodyParser } from '@pixelmill/kit';

/** Raw uploads declaring more bytes than this are streamed on, by default. */
export const DEFAULT_STREAM_UPLOADS_FROM_BYTES = 8 * 1024 * 1024;

/** The declared lengths of the raw uploads left unread, to be streamed on by the route. */
const unreadUploads = new WeakMap<Request, number>();

/** The declared length of a raw upload the parser left unread (to be streamed on); undefined when it was read. */
export function streamedUploadLength(req: Request): number | undefined {
  return unreadUploads.get(req);
}

export interface UploadParserOptions {
  /** Largest image, in bytes. */
  maxBytes: number;
  /**
   * A raw body declaring more bytes than this (and no more than `maxBytes`) is left unread for the
   * route to stream on (see `streamedUploadLength`); 8 MiB by default.
   */
  streamFromBytes?: number;
  /**
   * Runs when a form's file part starts, before a byte of it is stored, with the fields sent
   * before it already on `req.body`; throwing refuses the upload (the rest is read and dropped).
   */
  beforeFile?: (req: Request) => void;
}

/**
 * Reads an upload into memory, at most `maxBytes` of image: a multipart form (browsers) puts the
 * file on `req.file` and its fields on `req.body`; any other body (API clients, normally
 * `image/*`) becomes a Buffer on `req.body`, unless it declares more than `streamFromBytes`: that
 * one is left unread for the route to stream on. Limits break with MulterError or a 413, which
 * the error handler maps. Nothing touches the disk, so a refused upload leaves nothing behind.
 */
export function uploadParser({
  maxBytes,
  streamFromBytes = DEFAULT_STREAM_UPLOADS_FROM_BYTES,
  beforeFile,
}: UploadParserOptions): RequestHandler {
  const multipart = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, files: 1, fields: 4, fieldNameSize: 100, fieldSize: 1024, parts: 5, headerPairs: 50 },
    fileFilter: (req, _file, accept) => {
      try {
        beforeFile?.(req);
        accept(null, true);
      } catch (err) {
        accept(err as Error);
      }
    },
  }).single(UPLOAD_FIELD);
  // The declared type is not trusted either way: the magic bytes decide, after parsing.
  const raw = rawBodyParser({ limit: maxBytes });
  // The form parser's own errors (no boundary, a form cut short) are the client's malformed
  // request; limits (MulterError) and our refusals (AppError) pass through as they are.
  const multipartWithClearErrors: RequestHandler = (req, res, next) =>
    multipart(req, res, (err?: unknown) => {
      if (err === undefined || err instanceof AppError || (err as Error).name === 'MulterError') {
        next(err);
        return;
      }
      next(new AppError('bad_request', 400, `malformed multipart form: ${(err as Error).message}`));
    });
  // Node's parser delivers exactly the declared length, so a streamed body needs no limit of its own.
  const rawOrStreamed: RequestHandler = (req, res, next) => {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > streamFromBytes && declared <= maxBytes) {
      unreadUploads.set(req, declared);
      next();
      return;
    }
    raw(req, res, next);
  };
  return (req, res, next) => (req.is('multipart/form-data') ? multipartWithClearErrors(req, res, next) : rawOrStreamed(req, res, next));
}
