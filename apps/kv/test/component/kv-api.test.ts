import Database from 'better-sqlite3';
import { ErrorBodySchema, KvEntrySchema, KvListSchema, kvContract } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import { createTestSchema, startTcpProxy, TEST_DATABASE_URL, type TcpProxy, type TestSchema } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import type { KvRepository } from '../../src/data-access/kv-repository';
import { PostgresKvRepository } from '../../src/data-access/postgres-kv-repository';
import { SqliteKvRepository } from '../../src/data-access/sqlite-kv-repository';
import { BACKENDS, SQLITE, type KvStore } from '../support/kv-backends';

describe.each(BACKENDS)('kv API on $name', (backend) => {
  let store: KvStore;
  let repository: KvRepository;
  let server: Listening;
  let client: ContractClient;
  let now = Date.parse('2026-01-01T00:00:00Z');

  beforeEach(async () => {
    store = await backend.createStore();
    repository = await store.open(() => now);
    server = await listen(createApp({ repository, logger: createLogger('kv', 'silent') }), 0);
    client = new ContractClient({ service: 'kv', baseUrl: server.url });
  });

  afterEach(async () => {
    await server.close();
    await store.destroy();
  });

  const send = (method: string, urlPath: string, body?: string, contentType = 'application/json') =>
    fetch(`${server.url}${urlPath}`, { method, body, headers: body === undefined ? {} : { 'content-type': contentType } });

  it('when a key is set, then it can be read back, listed by prefix and deleted', async () => {
    const set = await client.call(kvContract.set, { params: { key: 'services/master' }, body: { value: 'http://127.0.0.1:3003' } });
    expect(set.status).toBe(200);

    const got = await client.call(kvContract.get, { params: { key: 'services/master' } });
    expect(got).toMatchObject({ status: 200, body: { key: 'services/master', value: 'http://127.0.0.1:3003', expiresAt: null } });

    await client.call(kvContract.set, { params: { key: 'config/op' }, body: { value: 'invert' } });
    const listed = await client.call(kvContract.list, { query: { prefix: 'services/' } });
    expect(listed.status).toBe(200);
    expect(listed.status === 200 && listed.body.items.map((item) => item.key)).toEqual(['services/master']);

    const deleted = await client.call(kvContract.delete, { params: { key: 'services/master' } });
    expect(deleted.status).toBe(204);
    const gone = await client.call(kvContract.get, { params: { key: 'services/master' } });
    expect(gone.status).toBe(404);
  });

  it('when a key is set again, then the new value wins', async () => {
    await client.call(kvContract.set, { params: { key: 'a' }, body: { value: '1' } });
    await client.call(kvContract.set, { params: { key: 'a' }, body: { value: '2' } });
    const got = await client.call(kvContract.get, { params: { key: 'a' } });
    expect(got.status === 200 && got.body.value).toBe('2');
  });

  it('when a key has a ttl, then it disappears once the ttl has passed', async () => {
    await client.call(kvContract.set, { params: { key: 'services/storage' }, body: { value: 'x', ttlSeconds: 15 } });
    now += 14_000;
    expect((await client.call(kvContract.get, { params: { key: 'services/storage' } })).status).toBe(200);
    now += 2_000;
    expect((await client.call(kvContract.get, { params: { key: 'services/storage' } })).status).toBe(404);
    const listed = await client.call(kvContract.list, { query: { prefix: 'services/' } });
    expect(listed.status === 200 && listed.body.items).toEqual([]);
  });

  it('when a prefix contains LIKE wildcards, then they match literally', async () => {
    await client.call(kvContract.set, { params: { key: 'a_b' }, body: { value: '1' } });
    await client.call(kvContract.set, { params: { key: 'axb' }, body: { value: '2' } });
    const listed = await client.call(kvContract.list, { query: { prefix: 'a_' } });
    expect(listed.status === 200 && listed.body.items.map((item) => item.key)).toEqual(['a_b']);
  });

  it('when a listing is longer than its limit, then it comes in pages joined by nextCursor', async () => {
    for (const key of ['p/1', 'p/2', 'p/3']) await client.call(kvContract.set, { params: { key }, body: { value: key } });

    const first = await client.call(kvContract.list, { query: { prefix: 'p/', limit: 2 } });
    expect(first).toMatchObject({ status: 200, body: { items: [{ key: 'p/1' }, { key: 'p/2' }], nextCursor: 'p/2' } });
    const second = await client.call(kvContract.list, { query: { prefix: 'p/', limit: 2, cursor: 'p/2' } });
    expect(second).toMatchObject({ status: 200, body: { items: [{ key: 'p/3' }], nextCursor: null } });
  });

  it('when the process restarts, then the data is still there', async () => {
    await client.call(kvContract.set, { params: { key: 'kept' }, body: { value: 'yes' } });
    await repository.close();

    const reopened = await store.open(() => now);

    expect((await reopened.get('kept'))?.value).toBe('yes');
  });

  it.each([
    ['an unknown key', 'GET', '/keys/nope', undefined, 404, 'not_found'],
    ['a malformed key', 'GET', '/keys/..%2Fetc', undefined, 400, 'bad_request'],
    ['a missing value', 'POST', '/keys/a', '{}', 400, 'bad_request'],
    ['a value of the wrong type', 'POST', '/keys/a', '{"value":3}', 400, 'bad_request'],
    ['malformed JSON', 'POST', '/keys/a', '{"value":', 400, 'bad_request'],
    ['a negative ttl', 'POST', '/keys/a', '{"value":"v","ttlSeconds":-1}', 400, 'bad_request'],
    ['deleting an unknown key', 'DELETE', '/keys/nope', undefined, 404, 'not_found'],
    ['a listing limit of 0', 'GET', '/keys?limit=0', undefined, 400, 'bad_request'],
    ['a listing limit above 1000', 'GET', '/keys?limit=1001', undefined, 400, 'bad_request'],
    ['a cursor that is no key', 'GET', '/keys?cursor=%2Fetc', undefined, 400, 'bad_request'],
    ['a wrong method', 'PATCH', '/keys/a', undefined, 405, 'method_not_allowed'],
    ['an unknown route', 'GET', '/nothing-here', undefined, 404, 'not_found'],
  ])('when a request has %s, then it is refused with a JSON error', async (_name, method, urlPath, body, status, code) => {
    const response = await send(method, urlPath, body);
    expect(response.status).toBe(status);
    const parsed = ErrorBodySchema.parse(await response.json());
    expect(parsed.error.code).toBe(code);
    expect(parsed.error.message).not.toMatch(/at .*\.js/);
    // The service is still up and answering.
    expect((await send('GET', '/healthz')).status).toBe(200);
  });

  it('when a prefix holds a NUL character, then the listing is empty', async () => {
    await client.call(kvContract.set, { params: { key: 'a' }, body: { value: '1' } });

    const response = await send('GET', '/keys?prefix=a%00');

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ items: [], nextCursor: null });
  });

  it('when the request is not JSON, then the error names the body', async () => {
    const response = await send('POST', '/keys/a', 'value=1', 'text/plain');
    expect(response.status).toBe(400);
    const parsed = ErrorBodySchema.parse(await response.json());
    expect(parsed.error.message).toContain('body');
  });

  it('answers health and readiness', async () => {
    expect(await (await send('GET', '/healthz')).json()).toEqual({ status: 'ok', service: 'kv' });
    const ready = await send('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok' } });
  });

  it('keeps entries valid against the contract', async () => {
    const response = await send('POST', '/keys/x', '{"value":"v"}');
    KvEntrySchema.parse(await response.json());
    KvListSchema.parse(await (await send('GET', '/keys?prefix=x')).json());
  });
});

describe('kv on SQLite', () => {
  let store: KvStore;
  let repository: KvRepository;

  beforeEach(async () => {
    store = await SQLITE.createStore();
    repository = await store.open();
  });
  afterEach(() => store.destroy());

  it('keeps the journal in WAL mode, commits with synchronous NORMAL and waits for a busy lock', () => {
    const db = (repository as unknown as { db: Database.Database }).db;
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5_000);
    const other = new Database(db.name);
    expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
    other.close();
  });

  it('when the file was written by a kv without the expiry index, then it is brought up to date and keeps its entries', async () => {
    const file = (repository as unknown as { db: Database.Database }).db.name;
    await repository.close();
    const old = new Database(file);
    old.exec('DROP INDEX kv_expires_at');
    old.pragma('user_version = 0');
    old.prepare('INSERT INTO kv (key, value, updated_at, expires_at) VALUES (?, ?, ?, ?)').run('old', 'kept', 0, null);
    old.close();

    const upgraded = new SqliteKvRepository(file);
    const indexes = (upgraded as unknown as { db: Database.Database }).db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index'")
      .all();

    expect(indexes).toContainEqual({ name: 'kv_expires_at' });
    expect((await upgraded.get('old'))?.value).toBe('kept');
    await upgraded.close();
  });
});

describe('kv with tokens', () => {
  const INTERNAL = 'internal-token-0123456789';
  const WORKER = 'worker-token-0123456789ab';
  let store: KvStore;
  let repository: KvRepository;
  let server: Listening;

  beforeEach(async () => {
    store = await SQLITE.createStore();
    repository = await store.open();
    await repository.set('services/master', 'http://127.0.0.1:3003');
    await repository.set('config/secret', 'hidden');
    const app = createApp({ repository, logger: createLogger('kv', 'silent'), tokens: { internal: INTERNAL, worker: WORKER } });
    server = await listen(app, 0);
  });
  afterEach(async () => {
    await server.close();
    await store.destroy();
  });

  const get = (urlPath: string, token?: string, method = 'GET') =>
    fetch(`${server.url}${urlPath}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('when a request has no token or a wrong one, then it gets 401', async () => {
    const anonymous = await get('/keys/services%2Fmaster');
    expect(anonymous.status).toBe(401);
    expect(ErrorBodySchema.parse(await anonymous.json()).error.code).toBe('unauthorized');
    expect((await get('/keys/services%2Fmaster', 'wrong-token-wrong-token')).status).toBe(401);
    expect((await get('/keys/services%2Fmaster', INTERNAL)).status).toBe(200);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('when GET /authz is called, then it answers 204 to INTERNAL_TOKEN and 401 to the worker token, a wrong one or none', async () => {
    expect((await get('/authz', INTERNAL)).status).toBe(204);
    for (const token of [WORKER, 'wrong-token-wrong-token', undefined]) expect((await get('/authz', token)).status).toBe(401);
  });

  it('when a worker reads or lists service addresses with its token, then it gets them, and nothing else', async () => {
    expect((await get('/keys/services%2Fmaster', WORKER)).status).toBe(200);
    const listed = await get('/keys?prefix=services/', WORKER);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { items: Array<{ key: string }> }).items.map((item) => item.key)).toEqual(['services/master']);

    expect((await get('/keys/config%2Fsecret', WORKER)).status).toBe(401);
    expect((await get('/keys?prefix=', WORKER)).status).toBe(401);
    expect((await get('/keys', WORKER)).status).toBe(401);
    expect((await get('/keys?prefix=config/', WORKER)).status).toBe(401);
    expect((await get('/keys?prefix=service', WORKER)).status).toBe(401);
    expect((await get(`/keys?prefix=${encodeURIComponent('services/../config')}`, WORKER)).status).toBe(401);
    expect((await get('/keys?prefix=services/&prefix=config/', WORKER)).status).toBe(401);
    expect((await get('/keys/services%2Fmaster', WORKER, 'DELETE')).status).toBe(401);
    expect(await repository.get('services/master')).toBeDefined();
  });
});

describe('kv when PostgreSQL is out of reach', () => {
  let schema: TestSchema;
  let proxy: TcpProxy;
  let repository: KvRepository;
  let server: Listening;

  beforeEach(async () => {
    schema = await createTestSchema('kv');
    const database = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
    database.port = String(proxy.port);
    repository = await PostgresKvRepository.open({ url: database.toString(), schema: schema.schema, poolSize: 2 });
    server = await listen(createApp({ repository, logger: createLogger('kv', 'silent') }), 0);
  });
  afterEach(async () => {
    await server.close();
    await repository.close();
    await proxy.close();
    await schema.drop();
  });

  const send = (method: string, urlPath: string, body?: string) =>
    fetch(`${server.url}${urlPath}`, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } });

  it('when the database cannot be reached, then kv answers 503 unavailable as JSON, stays up, and serves again once it is back', async () => {
    expect((await send('POST', '/keys/kept', '{"value":"yes"}')).status).toBe(200);

    await proxy.cut();

    for (const [method, urlPath, body] of [
      ['GET', '/keys/kept'],
      ['POST', '/keys/other', '{"value":"v"}'],
      ['DELETE', '/keys/kept'],
      ['GET', '/keys?prefix=k'],
    ] as const) {
      const response = await send(method, urlPath, body);
      expect({ method, urlPath, status: response.status }).toEqual({ method, urlPath, status: 503 });
      expect(ErrorBodySchema.parse(await response.json()).error).toMatchObject({ code: 'unavailable', message: /database/ });
    }
    const ready = await send('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { database: 'failing' } });
    expect((await send('GET', '/healthz')).status).toBe(200);

    await proxy.restore();

    const got = await send('GET', '/keys/kept');
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ key: 'kept', value: 'yes' });
    expect((await send('GET', '/readyz')).status).toBe(200);
  });
});
