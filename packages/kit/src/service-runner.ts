import type { Express } from 'express';
import type { ServiceName } from '@pixelmill/contracts';
import { Discovery, registerService } from './discovery';
import { formatLogLine, type Logger } from './logger';
import { listen, onShutdown, type Listening } from './server';

export interface RunServiceOptions {
  service: ServiceName;
  app: Express;
  logger: Logger;
  config: {
    PORT: number;
    HOST: string;
    ADVERTISE_URL?: string;
    INSTANCE_ID?: string;
    SHUTDOWN_TIMEOUT_MS: number;
    HEADERS_TIMEOUT_MS: number;
    BODY_TIMEOUT_MS: number;
    KV_URL?: string;
    REGISTER_INTERVAL_MS?: number;
    INTERNAL_TOKEN?: string;
  };
  /** Connections one client address may hold open at once (0 or unset: no cap); for a public door. */
  maxConnectionsPerClient?: number;
  /** Steps run on SIGTERM after the server stopped taking requests (close databases, ...); a promise is awaited. */
  onStop?: Array<() => unknown>;
}

/**
 * Listens, registers the advertised address in kv under `services/<service>/<instance>`
 * (renewed periodically), and on SIGTERM unregisters, finishes requests in flight, runs the
 * stop steps and exits.
 */
export async function runService(options: RunServiceOptions): Promise<Listening> {
  const { service, logger, config } = options;
  const server = await listen(options.app, config.PORT, {
    host: config.HOST,
    headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: config.BODY_TIMEOUT_MS,
    maxConnectionsPerClient: options.maxConnectionsPerClient,
  });
  const url = config.ADVERTISE_URL ?? server.url;
  // kv is its own registry: it registers with itself, so a listing of services/ is complete.
  const kvUrl = service === 'kv' ? server.url : config.KV_URL;
  const registration =
    kvUrl === undefined
      ? undefined
      : registerService(new Discovery({ kvUrl, token: config.INTERNAL_TOKEN }).kv, service, url, {
          intervalMs: config.REGISTER_INTERVAL_MS ?? 5_000,
          logger,
          instance: config.INSTANCE_ID,
        });
  logger.info(`${service} listening on ${server.url}`, { url });
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [() => registration?.stop(), () => server.close(), ...(options.onStop ?? [])]);
  return server;
}

/** Runs a main function; a failure to start is logged as one JSON line with its stack, and the process exits 1. */
export function runMain(service: string, main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    const [reason, meta] = err instanceof Error ? [err.message, { stack: err.stack }] : [String(err), {}];
    // Queued behind the logger's lines still on their way to stdout; the exit waits until all are written.
    process.stdout.write(formatLogLine('error', service, `${service} failed to start: ${reason}`, meta), () => process.exit(1));
  });
}
