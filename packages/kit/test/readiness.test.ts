import express from 'express';
import { ErrorBodySchema, ReadySchema } from '@pixelmill/contracts';
import { ContractClient, createServiceApp, errorHandler, listen, notFoundHandler, serviceReadiness, type ServiceTokens } from '../src';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();

const TOKEN = 'internal-token-0123456789';
const OTHER_TOKEN = 'another-token-9876543210';

/** A pixelmill server with nothing of its own, holding `tokens`. */
const startDependency = async (tokens: ServiceTokens = {}): Promise<string> =>
  (await serve(createServiceApp({ service: 'dependency', logger, routes: () => undefined, tokens }))).url;

/**
 * A server as pixelmill's were before `GET /authz`: /healthz and JSON 404s for the rest. Records
 * the path of every request it gets.
 */
const startOldDependency = async (): Promise<{ url: string; paths: string[] }> => {
  const paths: string[] = [];
  const app = express();
  app.use((req, _res, next) => {
    paths.push(req.path);
    next();
  });
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok', service: 'dependency' }));
  app.use(notFoundHandler());
  app.use(errorHandler(logger));
  return { url: (await serve(app)).url, paths };
};

/** A service whose /readyz checks the dependency at `url`, calling it with `token`; its /readyz answer. */
const readyzOf = async (url: string, token?: string): Promise<{ status: number; text: string; body: unknown }> => {
  const client = new ContractClient({ service: 'dependency', baseUrl: url, token, retries: 0, timeoutMs: 2_000 });
  const caller = await serve(
    createServiceApp({
      service: 'caller',
      logger,
      routes: () => undefined,
      readiness: { dependency: () => serviceReadiness(client) },
      tokens: { internal: token },
    }),
  );
  const response = await fetch(`${caller.url}/readyz`);
  const text = await response.text();
  return { status: response.status, text, body: ReadySchema.parse(JSON.parse(text)) };
};

describe('GET /authz', () => {
  it('when the server holds an internal token, then it answers 204 to that token and 401 to another or none', async () => {
    const url = await startDependency({ internal: TOKEN });

    expect((await fetch(`${url}/authz`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(204);
    for (const headers of [{ authorization: `Bearer ${OTHER_TOKEN}` }, {}] as Array<Record<string, string>>) {
      const refused = await fetch(`${url}/authz`, { headers });
      expect(refused.status).toBe(401);
      const text = await refused.text();
      expect(ErrorBodySchema.parse(JSON.parse(text)).error.code).toBe('unauthorized');
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(OTHER_TOKEN);
    }
  });

  it('when the server holds only a worker token, then the worker token is refused: /authz asks for the internal one', async () => {
    const url = await startDependency({ internal: TOKEN, worker: OTHER_TOKEN });
    expect((await fetch(`${url}/authz`, { headers: { authorization: `Bearer ${OTHER_TOKEN}` } })).status).toBe(401);
  });

  it('when the server holds no token, then it answers 204 to anyone', async () => {
    const url = await startDependency();
    expect((await fetch(`${url}/authz`)).status).toBe(204);
    expect((await fetch(`${url}/authz`, { headers: { authorization: `Bearer ${OTHER_TOKEN}` } })).status).toBe(204);
  });
});

describe('/readyz of a service that checks another one with serviceReadiness', () => {
  it('when the dependency holds another token, then it is not ready and the dependency is unauthorized, no token shown', async () => {
    const ready = await readyzOf(await startDependency({ internal: OTHER_TOKEN }), TOKEN);

    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not_ready', service: 'caller', checks: { dependency: 'unauthorized' } });
    expect(ready.text).not.toContain(TOKEN);
    expect(ready.text).not.toContain(OTHER_TOKEN);
  });

  it('when the service has no token and the dependency requires one, then the dependency is unauthorized', async () => {
    const ready = await readyzOf(await startDependency({ internal: TOKEN }), undefined);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ checks: { dependency: 'unauthorized' } });
  });

  it('when the dependency holds the same token, then the service is ready', async () => {
    const ready = await readyzOf(await startDependency({ internal: TOKEN }), TOKEN);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', service: 'caller', checks: { dependency: 'ok' } });
  });

  it('when the dependency runs open (no token), then the service is ready whatever token it sends', async () => {
    const url = await startDependency();
    expect((await readyzOf(url, TOKEN)).status).toBe(200);
    expect((await readyzOf(url, undefined)).status).toBe(200);
  });

  it('when the dependency is down, then it is failing', async () => {
    const gone = await listen(express(), 0);
    await gone.close();
    const ready = await readyzOf(gone.url, TOKEN);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'not_ready', checks: { dependency: 'failing' } });
  });

  it('when the dependency answers an error, then it is failing', async () => {
    const broken = express().get('/authz', (_req, res) => void res.status(500).json({ error: { code: 'internal', message: 'boom' } }));
    const ready = await readyzOf((await serve(broken)).url, TOKEN);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ checks: { dependency: 'failing' } });
  });

  it('when the dependency is older than GET /authz (404), then it counts as reachable and the service is ready, from one request', async () => {
    const old = await startOldDependency();
    const ready = await readyzOf(old.url, TOKEN);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', checks: { dependency: 'ok' } });
    expect(old.paths).toEqual(['/authz']);
  });

  it('when one check is ok and another unauthorized, then the service is not ready and each is shown as found', async () => {
    const caller = await serve(
      createServiceApp({
        service: 'caller',
        logger,
        routes: () => undefined,
        readiness: { database: async () => undefined, master: async () => 'unauthorized' },
      }),
    );
    const response = await fetch(`${caller.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'not_ready', service: 'caller', checks: { database: 'ok', master: 'unauthorized' } });
  });
});
