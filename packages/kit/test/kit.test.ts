import express from 'express';
import { z } from 'zod';
import { BINARY, commonContract, defineRoute, ErrorBodySchema } from '@pixelmill/contracts';
import {
  AppError,
  ConfigError,
  ContractClient,
  createServiceApp,
  MAX_URL_LENGTH,
  mountContract,
  parseConfig,
  PortSchema,
  ServerEnvSchema,
} from '../src';
import { logger, serveForEachTest } from './servers';

const serve = serveForEachTest();

describe('parseConfig', () => {
  const Schema = ServerEnvSchema.extend({ PORT: PortSchema.default(3000) });

  it('when the environment is valid, then it gives typed values with defaults', () => {
    expect(parseConfig(Schema, { PORT: '4000' })).toMatchObject({ PORT: 4000, HOST: '127.0.0.1', LOG_LEVEL: 'info' });
  });

  it('when a value is bad, then the error names the variable', () => {
    expect(() => parseConfig(Schema, { PORT: 'eighty', LOG_LEVEL: 'loud' })).toThrow(ConfigError);
    try {
      parseConfig(Schema, { PORT: 'eighty', LOG_LEVEL: 'loud' });
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toMatch(/PORT/);
      expect((err as ConfigError).problems.join('\n')).toMatch(/LOG_LEVEL/);
    }
  });
});

describe('createServiceApp', () => {
  const boom = defineRoute({
    method: 'GET',
    path: '/boom',
    summary: 'fails',
    query: z.object({ kind: z.string() }),
    responses: { 200: z.object({}) },
  });

  const app = () =>
    createServiceApp({
      service: 'test',
      logger,
      routes: (router) =>
        mountContract(
          router,
          { boom },
          {
            boom: ({ query }) => {
              if (query.kind === 'app') throw new AppError('conflict', 409, 'it clashes');
              if (query.kind === 'busy') throw new AppError('quota_exceeded', 429, 'full');
              if (query.kind === 'busy-hint') throw new AppError('too_many_requests', 429, 'slow down', { retryAfterSeconds: 2.5 });
              throw new Error('secret internals at /srv/app.js');
            },
          },
        ),
    });

  it('when a handler throws an AppError, then the client gets its status and the JSON error body', async () => {
    const server = await serve(app());
    const response = await fetch(`${server.url}/boom?kind=app`);
    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ error: { code: 'conflict', message: 'it clashes' } });
  });

  it('when a handler refuses with 429, then the answer says when to try again: its own hint, else a minute', async () => {
    const server = await serve(app());
    const plain = await fetch(`${server.url}/boom?kind=busy`);
    expect(plain.status).toBe(429);
    expect(plain.headers.get('retry-after')).toBe('60');
    const hinted = await fetch(`${server.url}/boom?kind=busy-hint`);
    expect(hinted.status).toBe(429);
    expect(hinted.headers.get('retry-after')).toBe('3');
    // Other refusals carry none.
    expect((await fetch(`${server.url}/boom?kind=app`)).headers.get('retry-after')).toBeNull();
  });

  it('when a handler throws anything else, then it is a 500 with no internals', async () => {
    const server = await serve(app());
    const response = await fetch(`${server.url}/boom?kind=other`);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(text).not.toContain('secret');
  });

  it('when the query does not match the contract, then the 400 names the field', async () => {
    const server = await serve(app());
    const response = await fetch(`${server.url}/boom`);
    expect(response.status).toBe(400);
    expect(ErrorBodySchema.parse(await response.json()).error.message).toContain('query.kind');
  });

  it('answers /healthz, a JSON 404 for unknown routes and a 405 with Allow for wrong methods', async () => {
    const server = await serve(app());
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok', service: 'test' });
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(ErrorBodySchema.parse(await missing.json()).error.code).toBe('not_found');
    const wrong = await fetch(`${server.url}/boom`, { method: 'POST' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
  });

  it('when an error is answered, then it is JSON with its length, and a HEAD request gets the headers without the body', async () => {
    const server = await serve(app());
    const response = await fetch(`${server.url}/boom?kind=app`);
    const text = await response.text();
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));

    const head = await fetch(`${server.url}/boom?kind=app`, { method: 'HEAD' });
    expect(head.status).toBe(409);
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(await head.text()).toBe('');
  });

  it('when the URL is too long, then it is a JSON 414 that still carries the request id', async () => {
    const server = await serve(app());
    const response = await fetch(`${server.url}/boom?kind=${'a'.repeat(MAX_URL_LENGTH)}`, { headers: { 'x-request-id': 'long-1' } });
    expect(response.status).toBe(414);
    expect(response.headers.get('x-request-id')).toBe('long-1');
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('uri_too_long');
  });

  it('when a request id is malformed or missing, then a new one is made and echoed', async () => {
    const server = await serve(app());
    const bad = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'has spaces' } });
    const none = await fetch(`${server.url}/healthz`);
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('forwards the request id on calls made while serving a request', async () => {
    let seen: string | undefined;
    const downstream = await serve(
      createServiceApp({
        service: 'down',
        logger,
        routes: (router) =>
          router.get('/echo', (req, res) => {
            seen = req.get('x-request-id');
            res.json({});
          }),
      }),
    );
    const echo = defineRoute({ method: 'GET', path: '/echo', summary: 'echo', responses: { 200: z.object({}) } });
    const client = new ContractClient({ service: 'down', baseUrl: downstream.url });
    const upstream = await serve(
      createServiceApp({
        service: 'up',
        logger,
        routes: (router) =>
          mountContract(
            router,
            { echo },
            {
              echo: async () => {
                await client.call(echo, {});
                return { status: 200, body: {} };
              },
            },
          ),
      }),
    );
    const response = await fetch(`${upstream.url}/echo`, { headers: { 'x-request-id': 'req-123' } });
    expect(response.headers.get('x-request-id')).toBe('req-123');
    expect(seen).toBe('req-123');
  });
});

describe('ContractClient', () => {
  it('when a service answers outside its contract, then the call fails loudly', async () => {
    const liar = express().get('/healthz', (_req, res) => {
      res.json({ status: 'fine' });
    });
    const server = await serve(liar);
    const client = new ContractClient({ service: 'liar', baseUrl: server.url });
    await expect(client.call(commonContract.health, {})).rejects.toThrow(/outside its contract/);
  });

  it('when a binary answer is streamed, then the bytes arrive whole, and an error answer is checked as usual', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024, 9);
    const file = defineRoute({
      method: 'GET',
      path: '/file/:name',
      summary: 'a file',
      params: z.object({ name: z.string() }),
      responses: { 200: BINARY, 404: ErrorBodySchema },
    });
    const server = await serve(
      createServiceApp({
        service: 'files',
        logger,
        routes: (router) =>
          mountContract(
            router,
            { file },
            {
              file: ({ params }) => {
                if (params.name !== 'big') throw new AppError('not_found', 404, 'no such file');
                return { status: 200, body: bytes };
              },
            },
          ),
      }),
    );
    const client = new ContractClient({ service: 'files', baseUrl: server.url });
    const streamed = await client.callStream(file, { params: { name: 'big' } });
    expect(streamed.stream).toBeDefined();
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.stream!) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    const missing = await client.callStream(file, { params: { name: 'other' } });
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'no such file' } } });
  });

  it('when a service is unreachable, then the call is a 503 AppError and the address is forgotten', async () => {
    const forgotten = jest.fn();
    const client = new ContractClient({ service: 'gone', baseUrl: 'http://127.0.0.1:9', onUnreachable: forgotten });
    const error = await client.call(commonContract.health, {}).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(503);
    expect(forgotten).toHaveBeenCalledWith('http://127.0.0.1:9');
  });
});
