import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { UPLOAD_FIELD } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import { takeFormHead } from './upload-form';

/**
 * Raw uploads declaring no more bytes than this are read whole before they go on to master, so a
 * lost answer can be asked for again; larger ones stream on as they arrive. None by default:
 * streaming costs less CPU and keeps memory bounded whatever the number of uploads at once; a
 * lost answer is a 503, and the client sends the upload again with its Idempotency-Key.
 */
export const DEFAULT_STREAM_UPLOADS_FROM_BYTES = 0;

/** What a form may carry besides its image: boundaries, part headers, the op and key fields. */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

/** A form's image once the form is read: passed on as it came, or held whole (see `PassOn`). */
export type FormImage =
  | {
      /** The image's bytes on their way on, all written; ending it completes the upload, destroying it calls it off. */
      forward: PassThrough;
      /** The answer to the upload passed on. */
      answer: Promise<unknown>;
    }
  | { buffer: Buffer };

/**
 * Decides, when a form's image starts, from the fields before it: checks its head (peeking at
 * `image`) and returns how to send it on as it arrives, or undefined to have it held whole until
 * the form ends (a field the upload needs may still come after it).
 */
export type PassOn = (req: Request, image: Readable) => Promise<((forward: Readable) => Promise<unknown>) | undefined>;

export interface UploadParserOptions {
  /** Largest image, in bytes. */
  maxBytes: number;
  passOn: PassOn;
}

/** multer 2.5's option to feed busboy ourselves; its published types do not have it yet. */
type FormParserOptions = multer.Options & { streamHandler: (req: Request, parser: Writable) => void };

const formTooLarge = (maxBytes: number): AppError =>
  new AppError('payload_too_large', 413, `the form is larger than an image of at most ${maxBytes} bytes and its fields`);

/** The most bytes a form may have: the image and its fields. */
export const formLimit = (maxBytes: number): number => maxBytes + FORM_OVERHEAD_BYTES;

/**
 * A multer storage engine that keeps nothing: a form's image goes on (to master) as its bytes
 * arrive, checked by its head, or is held in memory when it cannot go yet. The end of what goes
 * on is held back until the whole form is read and found valid (the route ends `forward`), so a
 * form refused after its image (a second file, a field over its limit) makes no task.
 */
class PassingStorage implements multer.StorageEngine {
  constructor(private readonly passOn: PassOn) {}

  _handleFile(req: Request, file: Express.Multer.File, callback: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    this.handle(req, file.stream).then(
      (image) => callback(null, image as Partial<Express.Multer.File>),
      (err: unknown) => callback(err),
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File & Partial<{ forward: PassThrough }>, callback: (error: Error | null) => void): void {
    file.forward?.destroy();
    callback(null);
  }

  private async handle(req: Request, image: Readable): Promise<FormImage> {
    const send = await this.passOn(req, image);
    if (send === undefined) return { buffer: await readAll(image) };
    const forward = new PassThrough();
    const answer = send(forward);
    // Whatever becomes of the form, the answer is waited for by the route only.
    answer.catch(() => undefined);
    // A form that ends without the route taking it (refused later on) calls the upload off.
    req.res?.once('close', () => {
      if (!forward.writableEnded) forward.destroy();
    });
    image.pipe(forward, { end: false });
    await new Promise<void>((resolve, reject) => {
      image.once('end', resolve).once('error', reject);
      // An answer before the whole image went on is a refusal (or master is gone): stop reading it.
      answer.then(
        () => reject(new AppError('unavailable', 503, 'master answered before the image was sent')),
        (err: unknown) => {
          image.unpipe(forward);
          image.resume();
          reject(err);
        },
      );
    });
    return { forward, answer };
  }
}

/** A file part read whole; busboy stops it one byte past the size limit, and multer refuses that. */
async function readAll(image: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of image) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The body parser of uploads. A multipart form (browsers) is read with its image passed on as it
 * arrives (see `PassingStorage`): its fields go to `req.body`, the image to `req.file`. Any other
 * body (API clients, normally `image/*`) is left unread: the route streams it on. Nothing
 * touches the disk, so a refused upload leaves nothing behind. Runs after the client was
 * admitted (see client-access.ts).
 *
 * A form over the limit is refused as soon as it passes it, not read to its end: the error
 * answer closes the connection. multer itself reads a form it refuses to the end before it
 * reports why, so the form's bytes are counted as they come, and past the image limit and
 * FORM_OVERHEAD_BYTES the upload is refused without waiting for multer.
 */
export function uploadParser({ maxBytes, passOn }: UploadParserOptions): RequestHandler {
  const formCap = formLimit(maxBytes);
  const refusers = new WeakMap<Request, (err: AppError) => void>();
  const options: FormParserOptions = {
    storage: new PassingStorage(passOn),
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
        // Reading stops here: the refusal reaches the error handler, which closes the connection,
        // only on the router's next turn of the event loop, and the socket would be read meanwhile.
        req.unpipe();
        req.pause();
        refusers.get(req)?.(formTooLarge(maxBytes));
      };
      req.on('data', count);
    },
  };
  const multipart = multer(options).single(UPLOAD_FIELD);
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
  return (req, res, next) => (req.is('multipart/form-data') ? form(req, res, next) : next());
}
