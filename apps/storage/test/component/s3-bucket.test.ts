import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { HeadBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { ObjectExistsError } from '../../src/data-access/object-store';
import { createS3Client, S3ObjectStore } from '../../src/data-access/s3-object-store';
import { S3RVER_CREDENTIALS, startS3rver } from '../object-backends';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const MB = 1024 * 1024;
const writeOptions = { maxBytes: 64 * MB, check: () => 'image/png' as const };

function image(size: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(PNG_SIGNATURE.length + size, seed);
  PNG_SIGNATURE.copy(bytes);
  return bytes;
}

/** The bytes in 64 KB chunks; `produced()` tells how many were read so far. */
function counted(bytes: Buffer): { stream: Readable; produced(): number } {
  let produced = 0;
  const stream = Readable.from(
    (function* () {
      for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
        const chunk = bytes.subarray(offset, offset + 64 * 1024);
        produced += chunk.length;
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
  return { stream, produced: () => produced };
}

interface SentRequest {
  command: string;
  headers: Record<string, string>;
}

/** Records every request a client sends: its command and its HTTP headers. */
function recordRequests(client: S3Client, onRequest?: (request: SentRequest) => void): SentRequest[] {
  const sent: SentRequest[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = { command: context.commandName ?? '', headers: (args.request as { headers: Record<string, string> }).headers };
      sent.push(request);
      onRequest?.(request);
      return next(args);
    },
    { step: 'finalizeRequest' },
  );
  return sent;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('storage on an S3 bucket', () => {
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  let raw: S3Client;
  let buckets = 0;
  const stores: S3ObjectStore[] = [];
  const newBucket = async (): Promise<string> => {
    const bucket = `pixelmill-s3-${process.pid}-${(buckets += 1)}`;
    const store = new S3ObjectStore({ client: s3.client(), bucket, createBucket: true });
    await store.ping();
    store.close();
    return bucket;
  };
  const storeOn = (bucket: string, client = s3.client(), createBucket = false) => {
    const store = new S3ObjectStore({ client, bucket, createBucket });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    s3 = await startS3rver();
    raw = s3.client();
  });
  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
  });
  afterAll(async () => {
    raw.destroy();
    await s3.stop();
  });

  it('when an object is larger than a part, then it goes up in parts, the first before the body was read to its end', async () => {
    const bytes = image(12 * MB);
    const body = counted(bytes);
    const client = s3.client();
    const producedAtPart: number[] = [];
    const sent = recordRequests(client, ({ command }) => {
      if (command === 'UploadPartCommand') producedAtPart.push(body.produced());
    });

    await storeOn(await newBucket(), client).putStream('finished', 'big', body.stream, writeOptions);

    expect(sent.map(({ command }) => command).filter((command) => command !== 'HeadObjectCommand')).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
    ]);
    expect(producedAtPart[0]).toBeLessThan(6 * MB);
    expect(sent.find(({ command }) => command === 'CompleteMultipartUploadCommand')!.headers['if-none-match']).toBe('*');
  }, 60_000);

  it('when an object is smaller than a part, then it goes up in one PUT that must not replace an object, with its type as its Content-Type', async () => {
    const bucket = await newBucket();
    const client = s3.client();
    const sent = recordRequests(client);
    const bytes = image(520 * 1024);

    await storeOn(bucket, client).putStream('inProgress', 'small', Readable.from([bytes]), writeOptions);

    const puts = sent.filter(({ command }) => command === 'PutObjectCommand');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.headers).toMatchObject({ 'if-none-match': '*', 'content-type': 'image/png' });
    const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'inProgress/small' }));
    expect({ type: head.ContentType, size: head.ContentLength }).toEqual({ type: 'image/png', size: bytes.length });
  });

  describe('when another write wins the key between the check and the write (a server that honours If-None-Match)', () => {
    /** Keys the proxy hides from the next HEAD: the other write was not done when it was asked. */
    const hidden = new Set<string>();
    const proxy = http.createServer();
    let proxyUrl: string;

    beforeAll(async () => {
      proxy.on('request', ifNoneMatchProxy(s3.endpoint, hidden));
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => proxy.close(resolve));
    });

    const racing = async (bytes: Buffer, again: Buffer) => {
      const bucket = await newBucket();
      const viaProxy = storeOn(bucket, createS3Client({ endpoint: proxyUrl, region: 'us-east-1', credentials: S3RVER_CREDENTIALS }));
      await viaProxy.putStream('finished', 'raced', Readable.from([bytes]), writeOptions);
      hidden.add(`/${bucket}/finished/raced`);
      return { bucket, result: viaProxy.putStream('finished', 'raced', counted(again).stream, writeOptions) };
    };

    it.each([
      ['in one PUT', 300 * 1024],
      ['in parts', 11 * MB],
    ])(
      'then, %s, the same bytes are a success',
      async (_how, size) => {
        const bytes = image(size, 3);
        const { result } = await racing(bytes, bytes);
        await expect(result).resolves.toEqual({ size: bytes.length, contentType: 'image/png' });
      },
      60_000,
    );

    it.each([
      ['in one PUT', 300 * 1024],
      ['in parts', 11 * MB],
    ])(
      'then, %s, other bytes are refused and the first stay',
      async (_how, size) => {
        const bytes = image(size, 3);
        const { bucket, result } = await racing(bytes, image(size, 4));
        await expect(result).rejects.toBeInstanceOf(ObjectExistsError);
        const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'finished/raced' }));
        expect(head.ContentLength).toBe(bytes.length);
      },
      60_000,
    );
  });

  describe('when the endpoint is out of reach', () => {
    let store: S3ObjectStore;
    let server: Listening;

    beforeEach(async () => {
      const endpoint = `http://127.0.0.1:${await closedPort()}`;
      store = storeOn('pixelmill', createS3Client({ endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS }));
      server = await listen(createApp({ store, logger: createLogger('storage', 'silent'), maxObjectBytes: MB }), 0);
    });
    afterEach(async () => {
      await server.close();
    });

    it('then every call of the store fails as unavailable (503)', async () => {
      const unavailable = { code: 'unavailable', status: 503 };
      await expect(store.putStream('finished', 'k', Readable.from([image(100)]), writeOptions)).rejects.toMatchObject(unavailable);
      await expect(store.open('finished', 'k')).rejects.toMatchObject(unavailable);
      await expect(store.stat('finished', 'k')).rejects.toMatchObject(unavailable);
      await expect(store.delete('finished', 'k')).rejects.toMatchObject(unavailable);
      await expect(store.ping()).rejects.toMatchObject(unavailable);
    });

    it('then the API answers 503 unavailable, /readyz says the bucket fails, and storage stays up', async () => {
      const call = (method: string, body?: Buffer) =>
        fetch(`${server.url}/objects/finished/k`, { method, body, headers: body ? { 'content-type': 'image/png' } : {} });
      for (const [method, body] of [['POST', image(100)], ['GET'], ['DELETE']] as const) {
        const response = await call(method, body);
        expect(response.status).toBe(503);
        expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('unavailable');
      }
      expect((await call('HEAD')).status).toBe(503);
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { bucket: 'failing' } });
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    });
  });

  it('when the endpoint takes connections but never answers, then calls fail as unavailable once the request timeout passes', async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const store = storeOn(
        'pixelmill',
        createS3Client({ endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS, requestTimeoutMs: 300 }),
      );
      await expect(store.stat('finished', 'k')).rejects.toMatchObject({ code: 'unavailable', status: 503 });
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable', status: 503 });
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('when the bucket is missing, then the store is not ready; told to create it, it does so at the readiness check', async () => {
    const bucket = `pixelmill-missing-${process.pid}`;

    await expect(storeOn(bucket).ping()).rejects.toMatchObject({ code: 'unavailable', status: 503 });
    await expect(storeOn(bucket).putStream('finished', 'k', Readable.from([image(100)]), writeOptions)).rejects.toMatchObject({
      status: 503,
    });

    const creating = storeOn(bucket, s3.client(), true);
    await creating.ping();
    await expect(raw.send(new HeadBucketCommand({ Bucket: bucket }))).resolves.toBeDefined();
    await creating.ping();
    expect(await creating.putStream('finished', 'k', Readable.from([image(100)]), writeOptions)).toEqual({
      size: 108,
      contentType: 'image/png',
    });
  });
});

/**
 * An S3 server that honours `If-None-Match: *`, made of s3rver (which ignores it) and this proxy
 * in front: a PUT or a multipart completion with it fails 412 when the key holds an object. The
 * keys in `hidden` are answered 404 to their next HEAD, as if the other write had not finished.
 */
function ifNoneMatchProxy(target: string, hidden: Set<string>): http.RequestListener {
  const written = new Set<string>();
  return (req, res) => {
    const url = new URL(req.url ?? '/', target);
    const objectPath = url.pathname;
    const guarded =
      req.headers['if-none-match'] === '*' && (req.method === 'PUT' || (req.method === 'POST' && url.searchParams.has('uploadId')));
    if (req.method === 'HEAD' && hidden.delete(objectPath)) {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    if (guarded && written.has(objectPath) && !url.searchParams.has('partNumber')) {
      req.resume();
      req.once('end', () =>
        res
          .writeHead(412, { 'content-type': 'application/xml' })
          .end(
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>',
          ),
      );
      return;
    }
    const forwarded = http.request(url, { method: req.method, headers: req.headers }, (answer) => {
      if (guarded && answer.statusCode === 200) written.add(objectPath);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  };
}
