import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { AcceptedSchema, masterContract, storageContract, taskdbContract } from '@pixelmill/contracts';
import { ContractClient, createLogger, listen, type Listening } from '@pixelmill/kit';
import { postInTwoParts, type ServiceProcess } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { ImageStoreGateway } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { ImageService } from '../../src/domain/image-service';
import { TaskAdmin } from '../../src/domain/task-admin';
import { INTERNAL_TOKEN, pngOf, startDependency, until } from './fixtures';

const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;

interface StorageTap {
  url: string;
  /** Bytes of upload bodies passed on to storage so far. */
  uploaded: number;
  /** When set, an upload is cut off (both connections destroyed) once this many of its bytes went through. */
  cutAfter?: number;
  close(): Promise<void>;
}

/** A proxy in front of the real storage that counts the upload bytes it passes on, and can cut an upload off. */
async function startStorageTap(target: string): Promise<StorageTap> {
  const tap: StorageTap = { url: '', uploaded: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const upstream = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    let passed = 0;
    req.on('data', (chunk: Buffer) => {
      passed += chunk.length;
      if (req.method === 'POST') tap.uploaded += chunk.length;
      if (tap.cutAfter !== undefined && passed >= tap.cutAfter) {
        upstream.destroy();
        req.socket.destroy();
        return;
      }
      upstream.write(chunk);
    });
    req.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tap.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  tap.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return tap;
}

/** An upload in two parts, the second only once `beforeRest` resolves. */
const uploadInParts = (url: string, bytes: Buffer, firstPart: number, beforeRest: () => Promise<void>, headers = {}) =>
  postInTwoParts(`${url}/newImage`, {
    headers: { 'content-type': 'image/png', authorization: `Bearer ${INTERNAL_TOKEN}`, ...headers },
    body: bytes,
    firstPart,
    beforeRest,
  });

/** A stream of `bytes` in 64 KiB chunks, sent without a length (chunked). */
const chunked = (bytes: Buffer): Readable =>
  Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.subarray(at, at + 64 * 1024);
    })(),
  );

describe('master, uploads streamed on to storage', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let tap: StorageTap;
  let server: Listening;
  let master: ContractClient;
  let taskdb: ContractClient;
  let storage: ContractClient;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-master-streaming-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    tap = await startStorageTap(storageProcess.url!);
    taskdb = new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN });
    storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    const gateways = {
      tasks: new TaskGateway(taskdb),
      store: new ImageStoreGateway(new ContractClient({ service: 'storage', baseUrl: tap.url, token: INTERNAL_TOKEN }), {
        publicUrl: async () => storageProcess.url!,
      }),
    };
    const images = new ImageService({
      ...gateways,
      leaseMs: 30_000,
      claimRecheckMs: 200,
      signedUrlTtlMs: 60_000,
    });
    const app = createApp({
      images,
      admin: new TaskAdmin({ ...gateways, images, retentionMs: 3_600_000 }),
      logger: createLogger('master', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
      dependencies: [],
      tokens: { internal: INTERNAL_TOKEN },
    });
    server = await listen(app, 0);
    master = new ContractClient({ service: 'master', baseUrl: server.url, token: INTERNAL_TOKEN });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await tap?.close();
    await Promise.all([taskdbProcess?.stop(), storageProcess?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    tap.cutAfter = undefined;
  });

  const stored = async (id: string): Promise<Buffer> => {
    const file = await storage.call(storageContract.get, { params: { state: 'inProgress', key: id } });
    expect(file.status).toBe(200);
    return file.body as Buffer;
  };
  const taskCount = async (): Promise<number> => {
    const page = await taskdb.call(taskdbContract.list, { query: { state: 'not_started', limit: 1000 } });
    return page.status === 200 ? page.body.ids.length : -1;
  };

  it('when an upload arrives, then storage gets its bytes before the client has sent them all, and keeps exactly them', async () => {
    const bytes = pngOf(500, 500, randomBytes(1024 * 1024));
    const before = tap.uploaded;
    // The rest is held back until storage has bytes: a master that read the whole body first would never send it.
    const answer = await uploadInParts(server.url, bytes, 512 * 1024, () => until(() => tap.uploaded - before >= 256 * 1024, 10_000));
    expect(answer.status).toBe(202);
    const { id } = AcceptedSchema.parse(answer.body);
    expect((await stored(id)).equals(bytes)).toBe(true);
    const task = await taskdb.call(taskdbContract.get, { params: { id } });
    expect(task.status === 200 && task.body).toMatchObject({ sourceBytes: bytes.length, width: 500, height: 500 });
  });

  it('when an upload comes without a length, then it is stored whole; past the limit it is a 413 and nothing is kept', async () => {
    const bytes = pngOf(10, 10, randomBytes(300 * 1024));
    const answer = await master.call(masterContract.newImage, { body: chunked(bytes), contentType: 'image/png', query: {} });
    expect(answer.status).toBe(202);
    expect((await stored((answer.body as { id: string }).id)).equals(bytes)).toBe(true);

    const tasks = await taskCount();
    const files = fs.readdirSync(path.join(dir, 'storage', 'inProgress')).length;
    const tooLarge = pngOf(10, 10, randomBytes(MAX_UPLOAD_BYTES));
    const refused = await master.call(masterContract.newImage, { body: chunked(tooLarge), contentType: 'image/png', query: {} });
    expect(refused.status).toBe(413);
    expect(await taskCount()).toBe(tasks);
    expect(fs.readdirSync(path.join(dir, 'storage', 'inProgress')).length).toBe(files);
  });

  it('when a key comes again with bytes that differ only past the head, then it is a 422; with the same bytes, the first task', async () => {
    const headers = { 'idempotency-key': `key-${randomUUID()}` };
    const bytes = pngOf(500, 500, randomBytes(400 * 1024));
    const send = (body: Buffer) =>
      master.call(masterContract.newImage, { body: chunked(body), contentType: 'image/png', query: {}, headers });
    const first = await send(bytes);
    expect(first.status).toBe(202);
    const again = await send(bytes);
    expect(again.status === 202 && again.body.id).toBe(first.status === 202 && first.body.id);
    const other = Buffer.from(bytes);
    other[other.length - 1] = other.at(-1)! ^ 0xff;
    const refused = await send(other);
    expect(refused.status).toBe(422);
  });

  it('when storage breaks off mid-upload, then the upload is a 503 and no task is made', async () => {
    const tasks = await taskCount();
    tap.cutAfter = 200 * 1024;
    const bytes = pngOf(500, 500, randomBytes(600 * 1024));
    const answer = await uploadInParts(server.url, bytes, bytes.length, async () => undefined);
    expect(answer.status).toBe(503);
    expect(await taskCount()).toBe(tasks);
    // master is still up and takes the next upload.
    tap.cutAfter = undefined;
    expect((await master.call(masterContract.newImage, { body: pngOf(2, 2), contentType: 'image/png', query: {} })).status).toBe(202);
  });
});
