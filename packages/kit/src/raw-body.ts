import type { Readable } from 'node:stream';
import express, { type Request, type RequestHandler } from 'express';
import { AppError } from './errors';

export interface RawBodyOptions {
  /** Largest body accepted, in bytes; a larger one is a 413. */
  limit: number;
}

export const tooLarge = (limit: number): AppError =>
  new AppError('payload_too_large', 413, `request body is larger than the limit of ${limit} bytes`);

/**
 * Reads a request's body with `take` given each chunk; resolves with `finish()` at its end, and
 * rejects as soon as `take` throws: the rest of the body is left unread (the error answer closes
 * the connection instead of draining it). Events, not `for await`: leaving an async iteration
 * early destroys the request, and with it the socket the refusal should go back on.
 */
function readBody(req: Readable, take: (chunk: Buffer) => void, finish: () => Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      try {
        take(chunk);
      } catch (err) {
        stop();
        req.pause();
        reject(err);
      }
    };
    const onEnd = (): void => {
      stop();
      try {
        resolve(finish());
      } catch (err) {
        reject(err);
      }
    };
    const onError = (err: Error): void => {
      stop();
      reject(err);
    };
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}

/**
 * Reads a body whose length is declared straight into one buffer of that size. Collecting the
 * chunks and joining them at the end (as `express.raw` does) holds every byte twice at the peak:
 * 50 MB for a 25 MB image.
 */
function readDeclared(req: Readable, length: number): Promise<Buffer> {
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

/** A body without a declared length (chunked): collected up to the limit; past it, refused at once. */
function readChunked(req: Readable, limit: number): Promise<Buffer> {
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
 * Refuses a compressed body on a route that streams its body on as it arrives: images are
 * compressed already, and a body unpacked on its way would have no length to check.
 */
export function refuseCompressed(req: Request): void {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    throw new AppError('unsupported_media_type', 415, `Content-Encoding ${encoding} is not accepted here: send the bytes as they are`);
  }
}

/**
 * A streamed body read whole into one Buffer, for a handler that must hold it (to send it again,
 * say): at most `limit` bytes, `length` when declared. A cut-off body is a 400.
 */
export function readStreamedBody(stream: Readable, length: number | undefined, limit: number): Promise<Buffer> {
  const reading =
    length === undefined ? readChunked(stream, limit) : length > limit ? Promise.reject(tooLarge(limit)) : readDeclared(stream, length);
  return reading.catch((failure: unknown) => {
    throw failure instanceof AppError ? failure : new AppError('bad_request', 400, 'the request was cut off before its body was read');
  });
}

/**
 * The body of any request as a Buffer on `req.body` (empty when there is none), whatever its
 * Content-Type. A compressed body goes through `express.raw`, which inflates it.
 */
export function rawBodyParser({ limit }: RawBodyOptions): RequestHandler {
  const inflating = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    const declared = req.headers['content-length'];
    const length = declared === undefined ? undefined : Number(declared);
    const encoding = req.headers['content-encoding'];
    // A compressed body declaring more than the limit is refused below like any other; one that
    // does not is inflated by express.raw, which reads a body past the limit to its end (bounded
    // by the server's body timeout) before it answers 413.
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity' && !(length !== undefined && length > limit)) {
      inflating(req, res, next);
      return;
    }
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
        next(failure instanceof AppError ? failure : new AppError('bad_request', 400, 'the request was cut off before its body was read'));
      },
    );
  };
}
