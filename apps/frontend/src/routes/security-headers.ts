import type { RequestHandler } from 'express';

/**
 * On every answer of the frontend (page, API, static files, errors): no type sniffing, no
 * Referer leaking an image id to another site, and never framed by another page.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  };
}
