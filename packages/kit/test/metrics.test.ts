import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defineRoute, ErrorBodySchema, serviceOpenApiDocument } from '@pixelmill/contracts';
import { AppError, Counter, createServiceApp, mountContract, Registry, UNMATCHED_ROUTE, type ServiceAppOptions } from '../src';
import { scrapeMetrics } from '../src/testing';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();
const TOKEN = 'internal-token-0123456789';
const { version } = JSON.parse(readFileSync(require.resolve('@pixelmill/contracts/package.json'), 'utf8')) as { version: string };

const thing = defineRoute({
  method: 'GET',
  path: '/things/:id',
  summary: 'a thing',
  params: z.object({ id: z.string() }),
  responses: { 200: z.object({ id: z.string() }), 404: ErrorBodySchema },
});

const app = (options: Partial<ServiceAppOptions> = {}) =>
  createServiceApp({
    service: 'test',
    logger,
    routes: (router) =>
      mountContract(
        router,
        { thing },
        {
          thing: ({ params }) => {
            if (params.id === 'missing') throw new AppError('not_found', 404, 'no such thing');
            return { status: 200, body: { id: params.id } };
          },
        },
      ),
    ...options,
  });

describe('GET /metrics', () => {
  it("when asked, then it answers Prometheus text with prom-client's content type: the process's figures and the requests'", async () => {
    const server = await serve(app());
    await fetch(`${server.url}/healthz`);
    const metrics = await scrapeMetrics(server.url);
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toBe(new Registry().contentType);
    expect(metrics.text).toContain('# TYPE http_requests_total counter');
    expect(metrics.text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(metrics.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(metrics.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(metrics.value('nodejs_eventloop_lag_seconds')).toBeDefined();
  });

  it('when the document describes it, then it names the media type served, and the internal token', async () => {
    const server = await serve(app());
    const { contentType } = await scrapeMetrics(server.url);
    const operation = serviceOpenApiDocument('kv', version).paths['/metrics']!.get as {
      security: unknown;
      responses: Record<string, { content?: Record<string, unknown> }>;
    };
    expect(Object.keys(operation.responses['200']!.content!)).toEqual([contentType]);
    expect(operation.security).toEqual([{ internalToken: [] }]);
  });

  it('when requests were answered, then they are counted by method, route pattern and status, never by URL', async () => {
    const server = await serve(app());
    await fetch(`${server.url}/things/a1b2c3`);
    await fetch(`${server.url}/things/d4e5f6`);
    await fetch(`${server.url}/things/missing`);
    await fetch(`${server.url}/things/g7h8i9`, { method: 'POST' });
    await fetch(`${server.url}/nowhere/j0k1`);

    const metrics = await scrapeMetrics(server.url);
    const labels = { method: 'GET', route: '/things/:id' };
    expect(metrics.value('http_requests_total', { ...labels, status: '200' })).toBe(2);
    expect(metrics.value('http_requests_total', { ...labels, status: '404' })).toBe(1);
    expect(metrics.value('http_requests_total', { method: 'POST', route: '/things/:id', status: '405' })).toBe(1);
    expect(metrics.value('http_requests_total', { method: 'GET', route: UNMATCHED_ROUTE, status: '404' })).toBe(1);
    expect(metrics.value('http_request_duration_seconds_count', { ...labels, status: '200' })).toBe(2);
    expect(metrics.value('http_request_duration_seconds_bucket', { ...labels, status: '200', le: '+Inf' })).toBe(2);
    expect(metrics.value('http_request_duration_seconds_sum', { ...labels, status: '200' })).toBeGreaterThan(0);
    for (const id of ['a1b2c3', 'd4e5f6', 'missing', 'g7h8i9', 'nowhere', 'j0k1']) expect(metrics.text).not.toContain(id);
  });

  it('when an internal token is set, then it answers 401 without it or with another, and the metrics with it', async () => {
    const server = await serve(app({ tokens: { internal: TOKEN } }));
    const bare = await scrapeMetrics(server.url);
    expect(bare.status).toBe(401);
    expect(ErrorBodySchema.parse(JSON.parse(bare.text)).error.code).toBe('unauthorized');
    expect((await scrapeMetrics(server.url, 'not-the-token-0123456789')).status).toBe(401);
    const granted = await scrapeMetrics(server.url, TOKEN);
    expect(granted.status).toBe(200);
    expect(granted.value('http_requests_total', { route: '/metrics', status: '401' })).toBe(2);
    // The probes stay open.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('when several apps run in one process, then each counts its own requests', async () => {
    const [one, two] = await Promise.all([serve(app()), serve(app())]);
    for (let i = 0; i < 3; i += 1) await fetch(`${one.url}/things/x`);
    await fetch(`${two.url}/things/x`);
    const labels = { method: 'GET', route: '/things/:id', status: '200' };
    expect((await scrapeMetrics(one.url)).value('http_requests_total', labels)).toBe(3);
    expect((await scrapeMetrics(two.url)).value('http_requests_total', labels)).toBe(1);
  });

  it("when the service has metrics of its own, then they are served with kit's, those added after the app was built too", async () => {
    const registry = new Registry();
    const server = await serve(app({ metrics: registry }));
    new Counter({ name: 'test_widgets_total', help: 'Widgets made', registers: [registry] }).inc(3);
    const metrics = await scrapeMetrics(server.url);
    expect(metrics.text).toContain('# HELP test_widgets_total Widgets made');
    expect(metrics.value('test_widgets_total')).toBe(3);
    expect(metrics.text).toContain('# TYPE http_requests_total counter');
  });
});
