import { readFileSync } from 'node:fs';
import { commonContract, serviceOpenApiDocument } from '@pixelmill/contracts';
import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { ContractClient, createServiceApp } from '../src';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();
const { version } = JSON.parse(readFileSync(require.resolve('@pixelmill/contracts/package.json'), 'utf8')) as { version: string };

describe('GET /openapi.json', () => {
  it("when a pixelmill service asks for it, then it answers that service's document, as JSON", async () => {
    const server = await serve(createServiceApp({ service: 'storage', logger, routes: () => undefined }));
    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(serviceOpenApiDocument('storage', version));
  });

  it("when a client of the common contract reads it, then the answer passes the contract's check", async () => {
    const server = await serve(createServiceApp({ service: 'kv', logger, routes: () => undefined }));
    const client = new ContractClient({ service: 'kv', baseUrl: server.url });
    const answer = await client.call(commonContract.openapi, {});
    expect(answer.status).toBe(200);
    expect(answer.body.info).toMatchObject({ title: 'pixelmill kv', version });
  });

  it('when a service has no contract here, then its document has the common routes, as mounted', async () => {
    const app = createServiceApp({ service: 'test', logger, routes: () => undefined });
    const server = await serve(app);
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(documentedRoutes(document)).toEqual(['GET /authz', 'GET /healthz', 'GET /metrics', 'GET /openapi.json', 'GET /readyz']);
    expect(mountedRoutes(app)).toEqual(documentedRoutes(document));
  });

  it('when a route is mounted outside the contract, then the route table shows it', () => {
    const app = createServiceApp({
      service: 'test',
      logger,
      routes: (router) => router.post('/undocumented/:id', (_req, res) => void res.end()),
    });
    expect(mountedRoutes(app)).toEqual([
      'GET /authz',
      'GET /healthz',
      'GET /metrics',
      'GET /openapi.json',
      'GET /readyz',
      'POST /undocumented/:id',
    ]);
  });
});

describe('firstMiddleware', () => {
  it("when given, then it runs before kit's own answers, errors included", async () => {
    const server = await serve(
      createServiceApp({
        service: 'test',
        logger,
        routes: () => undefined,
        firstMiddleware: [
          (_req, res, next) => {
            res.setHeader('x-first', 'yes');
            next();
          },
        ],
      }),
    );
    expect((await fetch(`${server.url}/healthz`)).headers.get('x-first')).toBe('yes');
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-first')).toBe('yes');
  });
});
