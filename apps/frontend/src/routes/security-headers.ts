import type { RequestHandler } from 'express';
import helmet from 'helmet';

type CspDirectives = Readonly<Record<string, readonly string[]>>;

/**
 * The upload page loads its script and style from us only; nothing inline, nothing external.
 * Images may also be `blob:`: with API keys the script fetches the result with the key and shows
 * it so. Every other answer carries this policy too: it does nothing to JSON, images and static
 * files loaded by the page, and any of them opened as a document can run nothing inline or foreign.
 */
const PAGE_CSP: CspDirectives = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'blob:'],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'base-uri': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/**
 * Swagger UI sets inline styles and draws its icons from data: URLs; its script and the document
 * come from us. Nothing from another host, and no inline script.
 */
const DOCS_CSP: CspDirectives = {
  ...PAGE_CSP,
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
};

/**
 * Helmet's headers on every answer of the frontend (page, API, static files, errors): no type
 * sniffing, no Referer leaking an image id to another site, never framed by another page, and
 * the page's CSP. Helmet's other defaults, each kept unless it would break something:
 * - CSP: exactly our directives (`useDefaults: false`). Helmet's default policy would allow
 *   inline styles and https: fonts, and its `upgrade-insecure-requests` would send the page's
 *   requests to https on a stack served over plain http (`http://<server>:8080/`).
 * - Cross-Origin-Embedder-Policy: off, as helmet has it. It serves cross-origin isolation
 *   (SharedArrayBuffer and the like), which nothing here uses; `require-corp` would not break the
 *   page (all it loads is ours, with CORP) but would buy nothing.
 * - Cross-Origin-Resource-Policy `same-origin`: kept. The page shows results from /image/get on
 *   its own origin; other sites can no longer embed them (a program fetching them is unaffected).
 * - Cross-Origin-Opener-Policy `same-origin`: kept over https only (`req.secure`: behind a TLS
 *   proxy, with TRUST_PROXY_HOPS set). Over plain http from a name that is not loopback (a stack
 *   at `http://<server>:8080/`) Chromium ignores it and logs an error on every page load. The
 *   page opens no window and is opened by none that needs a handle on it.
 * - Origin-Agent-Cluster: kept.
 * - Strict-Transport-Security: kept at a year, but for this host only. Browsers ignore it over
 *   http (the local stack); over https (a TLS proxy in front) it is what we want. The frontend
 *   cannot know what else lives under its name, so it does not decide for subdomains.
 * - X-DNS-Prefetch-Control off, X-Download-Options, X-Permitted-Cross-Domain-Policies none,
 *   X-XSS-Protection 0 (turns off the old browsers' filter, itself a hole), no X-Powered-By
 *   (kit removes it already): kept, they cost nothing.
 */
export function securityHeaders(): RequestHandler {
  const openerPolicy = helmet.crossOriginOpenerPolicy({ policy: 'same-origin' });
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: PAGE_CSP },
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: { maxAge: 365 * 24 * 60 * 60, includeSubDomains: false },
    xFrameOptions: { action: 'deny' },
  });
  // One middleware, not two: each one more in front of every request costs a turn of the router.
  return (req, res, next) => headers(req, res, (err) => (err !== undefined || !req.secure ? next(err) : openerPolicy(req, res, next)));
}

/** The docs page's policy, in place of the page's that `securityHeaders` set. */
export function docsContentSecurityPolicy(): RequestHandler {
  return helmet.contentSecurityPolicy({ useDefaults: false, directives: DOCS_CSP });
}
