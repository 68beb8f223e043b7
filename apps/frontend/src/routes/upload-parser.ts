import express, { type RequestHandler } from 'express';
import multer from 'multer';
import { UPLOAD_FIELD } from '@pixelmill/contracts';

/**
 * Reads an upload into memory, at most `maxBytes` of image: a multipart form (browsers) puts the
 * file on `req.file` and its fields on `req.body`; any other body (API clients, normally
 * `image/*`) becomes a Buffer on `req.body`. Limits break with MulterError or a 413, which the
 * error handler maps.
 */
export function uploadParser(maxBytes: number): RequestHandler {
  const multipart = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, files: 1, fields: 4, fieldNameSize: 100, fieldSize: 1024, parts: 5, headerPairs: 50 },
  }).single(UPLOAD_FIELD);
  // The declared type is not trusted either way: the magic bytes decide, after parsing.
  const raw = express.raw({ type: () => true, limit: maxBytes });
  return (req, res, next) => (req.is('multipart/form-data') ? multipart(req, res, next) : raw(req, res, next));
}
