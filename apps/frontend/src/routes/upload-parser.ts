import type { Writable } from 'node:stream';
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { UPLOAD_FIELD } from '@pixelmill/contracts';
import { AppError, rawBodyParser } from '@pixelmill/kit';
import { takeFormHead } from './upload-form';

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
}

/** What a form may carry besides its image: boundaries, part headers, the op and key fields. */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

/** multer 2.5's option to feed busboy ourselves; its published types do not have it yet. */
type FormParserOptions = multer.Options & { streamHandler: (req: Request, parser: Writable) => void };

const formTooLarge = (maxBytes: number): AppError =>
  new AppError('payload_too_large', 413, `the form is larger than an image of at most ${maxBytes} bytes and its fields`);

/**
 * Reads an upload into memory, at most `maxBytes` of image: a multipart form (browsers) puts the
 * file on `req.file` and its fields on `req.body`; any other body (API clients, normally
 * `image/*`) becomes a Buffer on `req.body`, unless it declares more than `streamFromBytes`: that
 * one is left unread for the route to stream on. Nothing touches the disk, so a refused upload
 * leaves nothing behind. Runs after the client was admitted (see client-access.ts).
 *
 * A body over the limit is refused as soon as it passes it, not read to its end: the error
 * answer closes the connection. multer itself reads a form it refuses to the end before it
 * reports why, so the form's bytes are counted as they come, and past the image limit and
 * FORM_OVERHEAD_BYTES the upload is refused without waiting for multer.
 */
export function uploadParser({ maxBytes, streamFromBytes = DEFAULT_STREAM_UPLOADS_FROM_BYTES }: UploadParserOptions): RequestHandler {
  const formCap = maxBytes + FORM_OVERHEAD_BYTES;
  const refusers = new WeakMap<Request, (err: AppError) => void>();
  const options: FormParserOptions = {
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, files: 1, fields: 4, fieldNameSize: 100, fieldSize: 1024, parts: 5, headerPairs: 50 },
    // The client access middleware may have read the form's first bytes for its key field.
    streamHandler: (req, parser) => {
      const head = takeFormHead(req);
      if (head !== undefined && head.length > 0) parser.write(head);
      req.pipe(parser);
      let read = head?.length ?? 0;
      const count = (chunk: Buffer): void => {
        read += chunk.length;
        if (read <= formCap) return;
        req.off('data', count);
        refusers.get(req)?.(formTooLarge(maxBytes));
      };
      req.on('data', count);
    },
  };
  const multipart = multer(options).single(UPLOAD_FIELD);
  // The declared type is not trusted either way: the magic bytes decide, after parsing.
  const raw = rawBodyParser({ limit: maxBytes });
  const form: RequestHandler = (req, res, next) => {
    if (Number(req.headers['content-length']) > formCap) {
      next(formTooLarge(maxBytes));
      return;
    }
    let reported = false;
    const report = (err?: unknown): void => {
      if (reported) return;
      reported = true;
      refusers.delete(req);
      next(err);
    };
    refusers.set(req, report);
    // The form parser's own errors (no boundary, a form cut short) are the client's malformed
    // request; limits (MulterError) and our refusals (AppError) pass through as they are.
    multipart(req, res, (err?: unknown) => {
      if (err === undefined || err instanceof AppError || (err as Error).name === 'MulterError') report(err);
      else report(new AppError('bad_request', 400, `malformed multipart form: ${(err as Error).message}`));
    });
  };
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
  return (req, res, next) => (req.is('multipart/form-data') ? form(req, res, next) : rawOrStreamed(req, res, next));
}
