import type { Request } from 'express';
import busboy from 'busboy';
import { AppError } from '@pixelmill/kit';

/** A form's API key field must come within its first this many bytes, before the image. */
export const FORM_KEY_BYTES = 8 * 1024;

/** The bytes of a form read for its key, to be given to the form parser before the rest of the body. */
const readHeads = new WeakMap<Request, Buffer>();

/** What `readFormKey` read of `req`'s form, handed over once (the parser reads the form from its start). */
export function takeFormHead(req: Request): Buffer | undefined {
  const head = readHeads.get(req);
  readHeads.delete(req);
  return head;
}

/**
 * Reads a multipart form only as far as its field `fieldName` (the upload page without
 * JavaScript sends the API key so): the field must come before the file part and within
 * FORM_KEY_BYTES. Resolves with the field's value, or undefined once the file part starts, the
 * form ends or the cap is passed without it. The bytes read are kept for `takeFormHead`; the
 * rest of the body is left unread.
 */
export function readFormKey(req: Request, fieldName: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fieldSize: 1024, fields: 4, files: 1, parts: 5, headerPairs: 50 } });
    } catch (err) {
      reject(new AppError('bad_request', 400, `malformed multipart form: ${(err as Error).message}`));
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    let settled = false;
    const settle = (outcome: { key?: string; error?: AppError }): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.pause();
      readHeads.set(req, Buffer.concat(chunks, length));
      // The parser is left to the garbage collector: ending it early would only raise errors.
      parser.removeAllListeners();
      parser.on('error', () => undefined);
      if (outcome.error) reject(outcome.error);
      else resolve(outcome.key);
    };
    parser.on('field', (name, value) => {
      if (name === fieldName) settle({ key: value });
    });
    parser.on('file', (_name, file) => {
      file.on('error', () => undefined).resume();
      settle({});
    });
    parser.on('error', (err: Error) => settle({ error: new AppError('bad_request', 400, `malformed multipart form: ${err.message}`) }));
    parser.on('close', () => settle({}));
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      parser.write(chunk);
      if (length > FORM_KEY_BYTES) settle({});
    };
    const onEnd = (): void => {
      parser.end();
    };
    const onError = (): void => settle({ error: new AppError('bad_request', 400, 'the request was cut off before its body was read') });
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}
