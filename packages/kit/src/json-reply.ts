import type { ServerResponse } from 'node:http';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Answers `status` with `body` as JSON, as Express's `res.json` does (same Content-Type, a
 * Content-Length, no body to a HEAD request), without its steps for what a service never uses:
 * `res.json` hands its text to `res.send`, which parses and rewrites the Content-Type it has just
 * set, looks the type up again, and checks the request's cache headers for a 304.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) ?? '';
  res.statusCode = status;
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
