import { finished } from 'node:stream';
import express, { type Request, type RequestHandler } from 'express';
import { AppError } from './errors';

export interface RawBodyOptions {
  /** Largest body accepted, in bytes; a larger one is a 413. */
  limit: number;
}

const tooLarge = (limit: number) => new AppError('payload_too_large', 413, `request body is larger than the limit of ${limit} bytes`);

/**
 * Reads a request's body with `take` given each chunk; resolves with `finish()` at its end. Events,
 * not `for await`: leaving an async iteration early destroys the request, and with it the socket
 * the refusal should go back on, so a refused body is read to its end and dropped instead.
 */
function readBody(req: Request, take: (chunk: Buffer) => void, finish: () => Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    req.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      try {
        take(chunk);
      } catch (err) {
        failure = err;
      }
    });
    req.once('end', () => {
      if (failure !== undefined) {
        reject(failure);
        return;
      }
      try {
        resolve(finish());
      } catch (err) {
        reject(err);
      }
    });
    req.once('error', reject);
  });
}

/**
 * Reads a body whose length is declared straight into one buffer of that size. Collecting the
 * chunks and joining them at the end (as `express.raw` does) holds every byte twice at the peak:
 * 50 MB for a 25 MB image.
 */
function readDeclared(req: Request, length: number): Promise<Buffer> {
  const body = Buffer.allocUnsafe(length);
  let offset = 0;
  return readBody(
    req,
    (chunk) => {
      // Node's parser never delivers more than Content-Length; the check keeps the copy in bounds.
      if (offset + chunk.length > length) throw new AppError('bad_request', 400, 'the body is longer than its Content-Length');
      chunk.copy(body, offset);
      offset += chunk.length;
    },
    () => {
      if (offset < length) throw new AppError('bad_request', 400, `the body ended after ${offset} of ${length} bytes`);
      return body;
    },
  );
}

/** A body without a declared length (chunked): collected up to the limit; past it, read to its end and refused. */
function readChunked(req: Request, limit: number): Promise<Buffer> {
  let chunks: Buffer[] = [];
  let length = 0;
  return readBody(
    req,
    (chunk) => {
      length += chunk.length;
      if (length > limit) {
        chunks = [];
        throw tooLarge(limit);
      }
      chunks.push(chunk);
    },
    () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)),
  );
}

/**
 * The body of any request as a Buffer on `req.body` (empty when there is none), whatever its
 * Content-Type. A compressed body goes through `express.raw`, which inflates it.
 */
export function rawBodyParser({ limit }: RawBodyOptions): RequestHandler {
  const inflating = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      inflating(req, res, next);
      return;
    }
    const declared = req.headers['content-length'];
    const length = declared === undefined ? undefined : Number(declared);
    const reading =
      length !== undefined && length > limit
        ? Promise.reject(tooLarge(limit))
        : length !== undefined
          ? readDeclared(req, length)
          : req.headers['transfer-encoding'] === undefined
            ? Promise.resolve(Buffer.alloc(0))
            : readChunked(req, limit);
    reading.then(
      (body) => {
        req.body = body;
        next();
      },
      (failure: unknown) => {
        // Anything but our own refusals is the connection breaking off mid-body.
        const err =
          failure instanceof AppError ? failure : new AppError('bad_request', 400, 'the request was cut off before its body was read');
        // The answer waits until the client has sent its body: one cut off mid-upload may never read it.
        if (req.readableEnded || req.destroyed) {
          next(err);
          return;
        }
        req.resume();
        finished(req, () => next(err));
      },
    );
  };
}
