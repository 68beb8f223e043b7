import type { Express, RequestHandler } from 'express';
import { commonContract } from '@pixelmill/contracts';
import {
  bearerToken,
  createServiceApp,
  listen,
  matchesHeldSecret,
  unauthorized,
  type Listening,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@pixelmill/kit';

/** What the worker shows on its status port. */
export interface StatusSource {
  /** The worker's own metrics, served after kit's (the process, the port's requests). */
  metrics: Registry;
  /** Each must be `ok` for `/readyz` to answer 200. */
  readiness: Record<string, ReadinessCheck>;
}

export interface StatusServerOptions {
  logger: Logger;
  /** METRICS_TOKEN: when set, `/metrics` (and `/authz`, which tells whether a caller holds it) want it as a bearer token. */
  token?: string;
}

/** The routes METRICS_TOKEN guards; `/healthz` and `/readyz` stay open for probes, as on every server. */
const GUARDED_PATHS: ReadonlySet<string> = new Set([commonContract.metrics.path, commonContract.authz.path]);

/**
 * Asks METRICS_TOKEN of the guarded routes. Kit's own token check would name INTERNAL_TOKEN in its
 * refusal, which a worker never holds.
 */
function requireMetricsToken(token: string): RequestHandler {
  return (req, _res, next) => {
    if (GUARDED_PATHS.has(req.path)) {
      const presented = bearerToken(req);
      if (presented === undefined) throw unauthorized('this route needs "Authorization: Bearer <METRICS_TOKEN>"');
      if (!matchesHeldSecret(presented, token)) throw unauthorized('the bearer token is not valid here');
    }
    next();
  };
}

/**
 * The worker's small server: kit's service app with no routes of its own, so `/metrics`,
 * `/healthz`, `/readyz`, `/openapi.json` and the error bodies are those of every pixelmill server.
 */
export function createStatusApp(source: StatusSource, options: StatusServerOptions): Express {
  return createServiceApp({
    service: 'worker',
    logger: options.logger,
    routes: () => undefined,
    metrics: source.metrics,
    readiness: source.readiness,
    firstMiddleware: options.token === undefined ? [] : [requireMetricsToken(options.token)],
  });
}

/** Listens on `host:port` (0: a free port) and resolves once bound; a port in use rejects. */
export function serveStatus(source: StatusSource, port: number, options: StatusServerOptions & { host: string }): Promise<Listening> {
  return listen(createStatusApp(source, options), port, { host: options.host });
}
