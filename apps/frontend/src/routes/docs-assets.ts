import path from 'node:path';
import express, { type RequestHandler } from 'express';

/** The files of swagger-ui-dist the docs page loads; its other files (a demo page that loads the Petstore) are not served. */
const SWAGGER_UI_FILES = new Set(['swagger-ui.css', 'swagger-ui-bundle.js']);

/** Serves Swagger UI's files from node_modules, so the docs page works without reaching another host. */
export function docsAssets(): RequestHandler {
  const folder = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const serve = express.static(folder, { index: false, fallthrough: false, maxAge: '1h' });
  return (req, res, next) => {
    if (!SWAGGER_UI_FILES.has(req.path.slice(1))) {
      next();
      return;
    }
    serve(req, res, next);
  };
}
