import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ErrorBodySchema, MAX_DELETIONS, storageContract, StoredObjectSchema } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, receiptProblem, signedObjectUrl, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { FileStore } from '../../src/data-access/file-store';
import { BACKENDS, startBackend, type ObjectBackend, type ObjectPlace } from '../object-backends';

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('rest of a png')]);
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('rest of a jpeg')]);

describe.each(BACKENDS)('storage API on %s', (backendName) => {
  let backend: ObjectBackend;
  let place: ObjectPlace;
  let server: Listening;
  let client: ContractClient;

  const start = async (maxObjectBytes = 1024 * 1024): Promise<void> => {
    server = await listen(createApp({ store: place.store(), logger: createLogger('storage', 'silent'), maxObjectBytes }), 0);
    client = new ContractClient({ service: 'storage', baseUrl: server.url });
  };

  beforeAll(async () => {
    backend = await startBackend(backendName);
  });
  afterAll(async () => {
    await backend.stop();
  });
  beforeEach(async () => {
    place = await backend.place();
    await start();
  });
  afterEach(async () => {
    await server.close();
    await place.dispose();
  });

  const send = (method: string, urlPath: string, body?: Buffer | string, contentType = 'image/png') =>
    fetch(`${server.url}${urlPath}`, { method, body, headers: body === undefined ? {} : { 'content-type': contentType } });
  const listFiles = () => place.list();
  const storedBytes = (state: 'inProgress' | 'finished', key: string) => place.read(state, key);

  it('when bytes are stored, then they sit in their state and come back with their content type', async () => {
    const put = await client.call(storageContract.put, {
      params: { state: 'inProgress', key: 'abc-1' },
      body: PNG,
      contentType: 'image/png',
    });
    expect(put).toMatchObject({ status: 201, body: { key: 'abc-1', state: 'inProgress', size: PNG.length, contentType: 'image/png' } });
    expect(await storedBytes('inProgress', 'abc-1')).toEqual(PNG);

    const got = await client.call(storageContract.get, { params: { state: 'inProgress', key: 'abc-1' } });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(PNG);
    expect(got.headers['content-type']).toBe('image/png');
  });

  it('when storage runs open (no signing key), then a stored result gets no receipt: there is nothing to sign with', async () => {
    const put = await send('POST', '/objects/finished/open-result', PNG);
    expect(put.status).toBe(201);
    expect(StoredObjectSchema.parse(await put.json())).toEqual({
      key: 'open-result',
      state: 'finished',
      size: PNG.length,
      contentType: 'image/png',
    });
  });

  it('keeps the two states apart', async () => {
    await client.call(storageContract.put, { params: { state: 'inProgress', key: 'k' }, body: PNG, contentType: 'image/png' });
    await client.call(storageContract.put, { params: { state: 'finished', key: 'k' }, body: JPEG, contentType: 'image/jpeg' });
    const before = await client.call(storageContract.get, { params: { state: 'inProgress', key: 'k' } });
    const after = await client.call(storageContract.get, { params: { state: 'finished', key: 'k' } });
    expect(before.body).toEqual(PNG);
    expect(after.body).toEqual(JPEG);
    expect(after.headers['content-type']).toBe('image/jpeg');
    expect(await listFiles()).toEqual(['finished/k', 'inProgress/k']);
  });

  it('when an object exists, then HEAD answers its size and type, and DELETE removes it', async () => {
    await client.call(storageContract.put, { params: { state: 'finished', key: 'h' }, body: PNG, contentType: 'image/png' });
    const head = await send('HEAD', '/objects/finished/h');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(PNG.length));
    expect(head.headers.get('content-type')).toBe('image/png');
    expect((await client.call(storageContract.delete, { params: { state: 'finished', key: 'h' } })).status).toBe(204);
    expect((await send('HEAD', '/objects/finished/h')).status).toBe(404);
    expect(await listFiles()).toEqual([]);
  });

  it('when objects of both states are deleted with one POST /deletions, then they are gone and the answer counts them all, one not stored too', async () => {
    await place.write('inProgress', 'm', PNG, 'image/png');
    await place.write('finished', 'm_1', PNG, 'image/png');
    await place.write('finished', 'kept', PNG, 'image/png');
    const objects = [
      { state: 'inProgress', key: 'm' },
      { state: 'finished', key: 'm_1' },
      { state: 'finished', key: 'never-stored' },
    ] as const;

    const deleted = await client.call(storageContract.deleteMany, { body: { objects: [...objects] } });

    expect(deleted).toMatchObject({ status: 200, body: { deleted: 3 } });
    expect(await listFiles()).toEqual(['finished/kept']);
    expect((await client.call(storageContract.deleteMany, { body: { objects: [...objects] } })).body).toEqual({ deleted: 3 });
  });

  it.each([
    ['no object', []],
    ['a key that leaves its folder', [{ state: 'finished', key: '../kept' }]],
    ['a state that is none', [{ state: 'done', key: 'kept' }]],
    ['more than MAX_DELETIONS objects', Array.from({ length: MAX_DELETIONS + 1 }, () => ({ state: 'finished', key: 'kept' }))],
  ])('when POST /deletions names %s, then it is a 400 and nothing is deleted', async (_what, objects) => {
    await place.write('finished', 'kept', PNG, 'image/png');

    const refused = await send('POST', '/deletions', JSON.stringify({ objects }), 'application/json');

    expect(refused.status).toBe(400);
    expect(ErrorBodySchema.parse(await refused.json()).error.code).toBe('bad_request');
    expect(await listFiles()).toEqual(['finished/kept']);
  });

  it('when an object is written again, then the same bytes are a success and other bytes a 409 that keeps the first', async () => {
    const put = (body: Buffer, contentType: string) =>
      client.call(storageContract.put, { params: { state: 'finished', key: 'o' }, body, contentType });
    expect((await put(PNG, 'image/png')).status).toBe(201);
    expect((await put(PNG, 'image/png')).status).toBe(201);
    const refused = await send('POST', '/objects/finished/o', JPEG, 'image/jpeg');
    expect(refused.status).toBe(409);
    expect(ErrorBodySchema.parse(await refused.json()).error.message).toMatch(/never replaced/);
    expect(await storedBytes('finished', 'o')).toEqual(PNG);
    expect(await listFiles()).toEqual(['finished/o']);
  });

  it('when part of an object is asked for with a Range, then that part comes as 206 with its Content-Range; other ranges get it whole', async () => {
    const bytes = Buffer.concat([PNG, Buffer.from('0123456789')]);
    expect((await send('POST', '/objects/finished/ranged', bytes)).status).toBe(201);
    const read = (range: string) => fetch(`${server.url}/objects/finished/ranged`, { headers: { range } });

    const head = await read('bytes=0-3');
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(`bytes 0-3/${bytes.length}`);
    expect(Buffer.from(await head.arrayBuffer()).equals(bytes.subarray(0, 4))).toBe(true);

    const tail = await read(`bytes=${bytes.length - 5}-`);
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).toString()).toBe('56789');
    const past = await read(`bytes=0-${bytes.length + 100}`);
    expect(past.headers.get('content-range')).toBe(`bytes 0-${bytes.length - 1}/${bytes.length}`);
    expect(Buffer.from(await past.arrayBuffer()).equals(bytes)).toBe(true);

    for (const ignored of ['bytes=-5', 'bytes=0-1,4-5', 'bytes=9-3', `bytes=${bytes.length}-`, 'lines=0-1']) {
      const whole = await read(ignored);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it('when a body is refused by its first bytes, then no temp file is left behind, however fast the refusal', async () => {
    // The refusal can come before the temp file is open: 50 in a row showed a leftover file before.
    for (let i = 0; i < 50; i += 1) {
      expect((await send('POST', `/objects/inProgress/refused-${i}`, PNG, 'image/jpeg')).status).toBe(415);
    }
    expect(await listFiles()).toEqual([]);
  });

  it('when a large body streams in without a length, then it is stored whole, and one over the limit is refused with nothing left', async () => {
    const big = Buffer.concat([PNG, Buffer.alloc(900 * 1024, 7)]);
    const chunked = (bytes: Buffer) =>
      new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.subarray(i, i + 64 * 1024));
          controller.close();
        },
      });
    const put = (key: string, bytes: Buffer) =>
      fetch(`${server.url}/objects/inProgress/${key}`, {
        method: 'POST',
        body: chunked(bytes),
        headers: { 'content-type': 'image/png' },
        duplex: 'half',
      });
    const stored = await put('big', big);
    expect(stored.status).toBe(201);
    expect((await storedBytes('inProgress', 'big'))!.equals(big)).toBe(true);

    // Far over the limit: refused while most of the body is still on its way, and answered, not reset.
    const tooBig = await put('too-big', Buffer.concat([big, Buffer.alloc(8 * 1024 * 1024)]));
    expect(tooBig.status).toBe(413);
    expect(ErrorBodySchema.parse(await tooBig.json()).error.code).toBe('payload_too_large');
    expect(await listFiles()).toEqual(['inProgress/big']);
  });

  it('when the client goes away in the middle of a body, then nothing is stored and storage goes on', async () => {
    await server.close();
    // The log line that says the request was handled (the client gone) is the moment to look.
    const logger = createLogger('storage', 'info');
    for (const transport of logger.transports) transport.silent = true;
    const handled = new Promise<void>((resolve) =>
      logger.on('data', (line: { message: string }) => {
        if (line.message.includes('hung up')) resolve();
      }),
    );
    server = await listen(createApp({ store: place.store(), logger, maxObjectBytes: 16 * 1024 * 1024 }), 0);
    const request = http.request(`${server.url}/objects/inProgress/gone`, { method: 'POST', headers: { 'content-type': 'image/png' } });
    request.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024, 9);
    request.write(PNG);
    // Past the first part of a multipart upload, so that one is under way when the client goes.
    for (let sent = 0; sent < 7 * 1024 * 1024; sent += chunk.length) {
      if (!request.write(chunk)) await new Promise((resolve) => request.once('drain', resolve));
    }
    request.destroy();

    await handled;
    expect(await listFiles()).toEqual([]);
    expect((await send('GET', '/objects/inProgress/gone')).status).toBe(404);
    expect((await send('GET', '/healthz')).status).toBe(200);
  });

  it('when a body of several megabytes arrives in odd-sized chunks, then every byte is stored in order and read back whole', async () => {
    await server.close();
    await start(8 * 1024 * 1024);
    // Varied bytes, so a chunk written twice or out of order would show; the first chunk is shorter than the type check needs.
    const varied = Buffer.alloc(3 * 1024 * 1024 + 12_345);
    for (let i = 0; i < varied.length; i += 1) varied[i] = (i * 31 + (i >> 11)) & 0xff;
    const big = Buffer.concat([PNG, varied]);
    const sizes = [7, 3, 65_536, 1000, 1_500_000];
    const body = new ReadableStream({
      start(controller) {
        let offset = 0;
        for (let i = 0; offset < big.length; i += 1) {
          const size = sizes[i % sizes.length]!;
          controller.enqueue(big.subarray(offset, offset + size));
          offset += size;
        }
        controller.close();
      },
    });
    const stored = await fetch(`${server.url}/objects/finished/many-chunks`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'image/png' },
      duplex: 'half',
    });
    expect(stored.status).toBe(201);
    expect(await stored.json()).toMatchObject({ size: big.length, contentType: 'image/png' });
    expect((await storedBytes('finished', 'many-chunks'))!.equals(big)).toBe(true);
    const back = await fetch(`${server.url}/objects/finished/many-chunks`);
    expect(back.headers.get('content-length')).toBe(String(big.length));
    expect(Buffer.from(await back.arrayBuffer()).equals(big)).toBe(true);
  }, 30_000);

  it.each([
    ['an unknown key', 'GET', '/objects/finished/nope', undefined, 'image/png', 404, 'not_found'],
    ['a wrong state name', 'GET', '/objects/done/abc', undefined, 'image/png', 400, 'bad_request'],
    ['a traversal key', 'GET', '/objects/inProgress/..%2F..%2Fetc%2Fpasswd', undefined, 'image/png', 400, 'bad_request'],
    ['a dotted key', 'POST', '/objects/inProgress/..', PNG, 'image/png', 404, 'not_found'],
    ['an encoded dot key (the client resolves it away)', 'POST', '/objects/inProgress/%2E%2E', PNG, 'image/png', 404, 'not_found'],
    ['a key with a slash', 'POST', '/objects/inProgress/a%2Fb', PNG, 'image/png', 400, 'bad_request'],
    ['an empty body', 'POST', '/objects/inProgress/e', Buffer.alloc(0), 'image/png', 400, 'bad_request'],
    ['a body that is not an image', 'POST', '/objects/inProgress/t', 'hello', 'image/png', 415, 'unsupported_media_type'],
    ['a content type that lies', 'POST', '/objects/inProgress/l', PNG, 'image/jpeg', 415, 'unsupported_media_type'],
    [
      'a body over the limit',
      'POST',
      '/objects/inProgress/big',
      Buffer.concat([PNG, Buffer.alloc(2 * 1024 * 1024)]),
      'image/png',
      413,
      'payload_too_large',
    ],
    ['deleting an unknown key', 'DELETE', '/objects/finished/nope', undefined, 'image/png', 404, 'not_found'],
    ['a wrong method', 'PATCH', '/objects/finished/x', undefined, 'image/png', 405, 'method_not_allowed'],
  ])(
    'when a request has %s, then it is refused with a JSON error and nothing is written',
    async (_n, method, urlPath, body, type, status, code) => {
      const response = await send(method, urlPath, body, type);
      expect(response.status).toBe(status);
      expect(ErrorBodySchema.parse(await response.json()).error.code).toBe(code);
      expect(await listFiles()).toEqual([]);
      expect(fs.existsSync(path.join(os.tmpdir(), 'etc'))).toBe(false);
      expect((await send('GET', '/healthz')).status).toBe(200);
    },
  );
});

describe.each(BACKENDS)('storage on %s with tokens and signed URLs', (backendName) => {
  const INTERNAL = 'internal-token-0123456789';
  const SIGNING_KEY = 'signing-key-0123456789abcdef';
  let backend: ObjectBackend;
  let place: ObjectPlace;
  let server: Listening;

  beforeAll(async () => {
    backend = await startBackend(backendName);
  });
  afterAll(async () => {
    await backend.stop();
  });
  beforeEach(async () => {
    place = await backend.place();
    const app = createApp({
      store: place.store(),
      logger: createLogger('storage', 'silent'),
      maxObjectBytes: 1024 * 1024,
      tokens: { internal: INTERNAL },
      signingKey: SIGNING_KEY,
    });
    server = await listen(app, 0);
    await place.write('inProgress', 'task-1', PNG, 'image/png');
  });
  afterEach(async () => {
    await server.close();
    await place.dispose();
  });

  const url = (method: 'GET' | 'POST', state: 'inProgress' | 'finished', key: string, expires = Date.now() + 60_000) =>
    signedObjectUrl(server.url, { method, state, key, expires }, SIGNING_KEY);

  it('when a result is stored, then the answer carries a receipt signed by storage, with the size, SHA-256, type and declared size of the bytes', async () => {
    const bytes = Buffer.alloc(70_000, 0x42);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(bytes);
    bytes.writeUInt32BE(13, 8);
    bytes.write('IHDR', 12, 'latin1');
    bytes.writeUInt32BE(320, 16);
    bytes.writeUInt32BE(240, 20);
    const before = Date.now();

    const put = await fetch(url('POST', 'finished', 'task-1_1'), { method: 'POST', body: bytes, headers: { 'content-type': 'image/png' } });

    expect(put.status).toBe(201);
    const { receipt } = StoredObjectSchema.parse(await put.json());
    expect(receipt).toMatchObject({
      state: 'finished',
      key: 'task-1_1',
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      contentType: 'image/png',
      width: 320,
      height: 240,
    });
    expect(receipt!.expires).toBeGreaterThan(before);
    expect(receiptProblem(receipt!, { state: 'finished', key: 'task-1_1' }, SIGNING_KEY)).toBeUndefined();
  });

  it('when a source is stored, then its answer carries no receipt (master, which stores it, knows its bytes)', async () => {
    const put = await fetch(`${server.url}/objects/inProgress/task-2`, {
      method: 'POST',
      body: PNG,
      headers: { 'content-type': 'image/png', authorization: `Bearer ${INTERNAL}` },
    });
    expect(put.status).toBe(201);
    expect(StoredObjectSchema.parse(await put.json()).receipt).toBeUndefined();
  });

  it('when a request has neither the token nor a signature, then it gets 401', async () => {
    const response = await fetch(`${server.url}/objects/inProgress/task-1`);
    expect(response.status).toBe(401);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('unauthorized');
    const withToken = await fetch(`${server.url}/objects/inProgress/task-1`, { headers: { authorization: `Bearer ${INTERNAL}` } });
    expect(withToken.status).toBe(200);
  });

  it('when POST /deletions comes without the internal token or with another one, then it gets 401 and nothing is deleted', async () => {
    const deletions = (headers: Record<string, string>) =>
      fetch(`${server.url}/deletions`, {
        method: 'POST',
        body: JSON.stringify({ objects: [{ state: 'inProgress', key: 'task-1' }] }),
        headers: { 'content-type': 'application/json', ...headers },
      });

    for (const headers of [{}, { authorization: 'Bearer not-the-internal-token' }] as Array<Record<string, string>>) {
      const refused = await deletions(headers);
      expect(refused.status).toBe(401);
      expect(ErrorBodySchema.parse(await refused.json()).error.code).toBe('unauthorized');
    }
    expect(await place.read('inProgress', 'task-1')).toEqual(PNG);
    expect((await deletions({ authorization: `Bearer ${INTERNAL}` })).status).toBe(200);
    expect(await place.read('inProgress', 'task-1')).toBeUndefined();
  });

  it('when a signed URL is used for what it was signed for, then it works without the token', async () => {
    const got = await fetch(url('GET', 'inProgress', 'task-1'));
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer())).toEqual(PNG);
    const put = await fetch(url('POST', 'finished', 'task-1'), { method: 'POST', body: JPEG, headers: { 'content-type': 'image/jpeg' } });
    expect(put.status).toBe(201);
    expect(await place.read('finished', 'task-1')).toEqual(JPEG);
  });

  it.each([
    ['another key', () => url('GET', 'inProgress', 'task-1').replace('/task-1?', '/task-2?')],
    ['another state', () => url('GET', 'inProgress', 'task-1').replace('/inProgress/', '/finished/')],
    ['another method', () => url('POST', 'inProgress', 'task-1')],
    ['an expired URL', () => url('GET', 'inProgress', 'task-1', Date.now() - 1)],
    ['a changed expiry', () => url('GET', 'inProgress', 'task-1').replace(/expires=(\d+)/, (_m, n: string) => `expires=${Number(n) + 1}`)],
  ])('when a signed URL is used for %s, then it gets 403 and nothing is written', async (_name, make) => {
    const response = await fetch(make());
    expect(response.status).toBe(403);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('forbidden');
    const upload = await fetch(url('GET', 'finished', 'task-9'), { method: 'POST', body: PNG, headers: { 'content-type': 'image/png' } });
    expect(upload.status).toBe(403);
    expect(await place.read('finished', 'task-9')).toBeUndefined();
  });
});

describe('storage on a folder', () => {
  it('when the store opens, then leftovers of interrupted writes are removed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-storage-'));
    try {
      new FileStore(dir).close();
      fs.writeFileSync(path.join(dir, 'tmp', 'half-written'), 'xx');
      new FileStore(dir).close();
      expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
