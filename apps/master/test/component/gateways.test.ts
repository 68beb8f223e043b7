import fs from 'node:fs';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { resultKey, storageContract } from '@pixelmill/contracts';
import { AppError, ContractClient, IMAGE_HEAD_BYTES } from '@pixelmill/kit';
import type { ServiceProcess } from '@pixelmill/kit/testing';
import { ImageStoreGateway, resultObject, sourceObject } from '../../src/data-access/image-store-gateway';
import { TaskGateway } from '../../src/data-access/task-gateway';
import { INTERNAL_TOKEN, pngOf, startDependency } from './fixtures';

/** The gateways' answers where taskdb's and storage's statuses do not map one to one. */
describe('master gateways', () => {
  let dir: string;
  let taskdbProcess: ServiceProcess;
  let storageProcess: ServiceProcess;
  let tasks: TaskGateway;
  let store: ImageStoreGateway;
  let storage: ContractClient;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-gateways-'));
    [taskdbProcess, storageProcess] = await Promise.all([startDependency('taskdb', dir), startDependency('storage', dir)]);
    tasks = new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: taskdbProcess.url!, token: INTERNAL_TOKEN }));
    storage = new ContractClient({ service: 'storage', baseUrl: storageProcess.url!, token: INTERNAL_TOKEN });
    store = new ImageStoreGateway(storage, { publicUrl: async () => storageProcess.url! });
  }, 30_000);

  afterAll(async () => {
    await Promise.all([taskdbProcess?.stop(), storageProcess?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const newTask = (owner?: string) => ({
    id: randomUUID(),
    op: 'invert' as const,
    contentType: 'image/png' as const,
    owner,
    sourceBytes: 0,
  });

  it('when a create repeats an id, then the outcome is the existing task, not a new one', async () => {
    const task = newTask();
    expect(await tasks.create(task)).toMatchObject({ kind: 'created', task: { id: task.id } });
    expect(await tasks.create(task)).toMatchObject({ kind: 'existing', task: { id: task.id } });
  });

  it("when taskdb refuses a create, then the outcome is a refusal carrying taskdb's error, not a throw", async () => {
    const outcome = await tasks.create({ ...newTask(`quota-${randomUUID().slice(0, 8)}`), sourceBytes: 10, quotaBytes: 5 });
    expect(outcome.kind).toBe('refused');
    expect(outcome.kind === 'refused' && outcome.error).toMatchObject({ code: 'quota_exceeded', status: 429 });
  });

  it('when taskdb cannot be reached, then a create throws: it may have happened', async () => {
    const nowhere = new TaskGateway(new ContractClient({ service: 'taskdb', baseUrl: 'http://127.0.0.1:9', retries: 0 }));
    await expect(nowhere.create(newTask())).rejects.toMatchObject({ code: 'unavailable', status: 503 });
  });

  it('when a task is unknown, then get answers undefined; once expired, it throws gone', async () => {
    expect(await tasks.get(randomUUID())).toBeUndefined();
    const task = newTask();
    await tasks.create(task);
    // Only an ended task expires: this one ends failed, with those earlier tests left queued.
    for (let claim = await tasks.claim(30_000); claim; claim = await tasks.claim(30_000)) {
      await tasks.changeState(claim.id, { to: 'failed', leaseToken: claim.leaseToken, error: 'given up' });
    }
    expect(await tasks.housekeepingDone({ sourcesDeleted: [], expired: [task.id] })).toEqual({ sourcesDeleted: 0, expired: 1 });
    const gone = tasks.get(task.id);
    await expect(gone).rejects.toBeInstanceOf(AppError);
    await expect(gone).rejects.toMatchObject({ code: 'gone', status: 410 });
  });

  it('when a task is looked up, then find tells it, its absence and its expiry apart, and a removal of none answers false', async () => {
    const task = newTask();
    await tasks.create(task);
    expect(await tasks.find(task.id)).toMatchObject({ kind: 'found', task: { id: task.id, state: 'not_started' } });
    expect(await tasks.find(randomUUID())).toEqual({ kind: 'missing' });
    await tasks.cancel(task.id, 'cancelled by an operator');
    await tasks.housekeepingDone({ sourcesDeleted: [], expired: [task.id] });
    expect(await tasks.find(task.id)).toEqual({ kind: 'expired' });
    expect(await tasks.remove(task.id)).toBe(true);
    expect(await tasks.remove(task.id)).toBe(false);
    expect(await tasks.find(task.id)).toEqual({ kind: 'missing' });
  });

  it('when a source is stored or not, then sourceStored says so', async () => {
    const id = randomUUID();
    expect(await store.sourceStored(id)).toBe(false);
    await store.putSource(id, pngOf(2, 2), 'image/png');
    expect(await store.sourceStored(id)).toBe(true);
  });

  it('when a change is refused, then it throws the same error taskdb gave', async () => {
    await expect(tasks.changeState(randomUUID(), { to: 'failed' })).rejects.toMatchObject({ code: 'not_found', status: 404 });
  });

  /** Stores bytes as an attempt's result, as a worker would: storage takes only what starts as an image. */
  const storeResult = async (id: string, attempt: number, size: number): Promise<Buffer> => {
    const bytes = pngOf(2, 2, Buffer.alloc(size - pngOf(2, 2, '').length, 7));
    const stored = await storage.call(storageContract.put, {
      params: { state: 'finished', key: resultKey(id, attempt) },
      body: bytes,
      contentType: 'image/png',
    });
    expect(stored.status).toBe(201);
    return bytes;
  };

  it('when a result is larger than the head, then resultHead reads only the head and tells the whole size', async () => {
    const id = randomUUID();
    const bytes = await storeResult(id, 1, IMAGE_HEAD_BYTES * 3);
    expect(await store.resultHead(id, 1)).toEqual({ head: bytes.subarray(0, IMAGE_HEAD_BYTES), size: bytes.length });
  });

  it('when a result is smaller than the head, then resultHead has all of it', async () => {
    const id = randomUUID();
    const bytes = await storeResult(id, 2, 100);
    expect(await store.resultHead(id, 2)).toEqual({ head: bytes, size: bytes.length });
  });

  it('when no result is stored, then resultHead and readResult answer undefined, and deleting it is fine', async () => {
    const id = randomUUID();
    expect(await store.resultHead(id, 1)).toBeUndefined();
    expect(await store.readResult(id, 1)).toBeUndefined();
    await expect(store.deleteObjects([resultObject(id, 1), sourceObject(id)])).resolves.toBeUndefined();
    await expect(store.deleteSource(id)).resolves.toBeUndefined();
  });
});
