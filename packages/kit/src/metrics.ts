import type { Request } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The route label of a request no route matched (a 404, a static file): its raw URL would make a series per URL. */
export const UNMATCHED_ROUTE = '(unmatched)';

/** Seconds: from a key read (well under a millisecond) to a long poll's 30 s and a slow upload. */
export const HTTP_DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type HttpLabel = 'method' | 'route' | 'status';

/** A server's HTTP requests, by method, matched route pattern and status. */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter<HttpLabel>({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram<HttpLabel>({
    name: 'http_request_duration_seconds',
    help: 'Time from a request reaching the app to the last byte of its answer handed to the OS, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [...HTTP_DURATION_BUCKETS],
    registers: [this.registry],
  });

  record(req: Request, status: number, seconds: number): void {
    const labels = { method: req.method, route: routeOf(req), status };
    this.requests.inc(labels);
    this.duration.observe(labels, seconds);
  }
}

/** The pattern of the route that answered (`/objects/:state/:key`), never the URL with its ids. */
function routeOf(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? req.baseUrl + path : UNMATCHED_ROUTE;
}

let processRegistry: Registry | undefined;

/**
 * How often the event loop's delay is sampled, in ms. Each sample wakes the loop: prom-client's
 * 10 ms made every idle service wake 100 times a second (about 4 ms of CPU a second each on the
 * machine of record); 100 ms still catches any stall long enough to matter.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * The process's own metrics (CPU, memory, event loop, GC, handles), collected once per process
 * however many apps it runs: each collection starts an event-loop monitor and a GC observer that
 * live as long as the process, and the figures are the process's, not an app's.
 */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return processRegistry;
}

/** What `/metrics` answers: the process's metrics, then each registry's, as Prometheus text. */
export function metricsSource(...registries: Registry[]): () => Promise<{ contentType: string; text: string }> {
  const ofProcess = processMetrics();
  return async () => {
    // Merged at each scrape: an app may add metrics to its registry after the app is built.
    const merged = Registry.merge([ofProcess, ...registries]);
    return { contentType: merged.contentType, text: await merged.metrics() };
  };
}
