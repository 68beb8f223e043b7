import { createHash } from 'node:crypto';
import path from 'node:path';
import jpeg from '@jimp/js-jpeg';
import { PNG } from 'pngjs';
import { OPERATIONS, resultDimensions, type ImageType, type Operation, type OperationParams } from '@pixelmill/contracts';
import { createLogger, parseConfig, type Listening } from '@pixelmill/kit';
import { WorkerConfigSchema } from '../../src/config';
import { applyOperation } from '../../src/domain/operation-registry';
import { createWorker, type Worker, type WorkerTuning } from '../../src/worker';
import { gifWithFrames, gifWithHugeFrame, jpegDeclaring, jpegWithSecondFrame, rgbaPng } from '@pixelmill/contracts/testing';
import { FakeMaster, FakeStorage, startFakeKv, type SeenRequest } from './fake-services';

const WIDTH = 4;
const HEIGHT = 3;

/** A PNG with transparency whose red and blue differ in every pixel. */
function makePng(): { bytes: Buffer; pixels: Buffer } {
  const image = new PNG({ width: WIDTH, height: HEIGHT });
  for (let i = 0, pixel = 0; i < image.data.length; i += 4, pixel++) {
    image.data.set([200 - pixel * 10, 50 + pixel, 10 + pixel * 5, pixel === 0 ? 0 : 100 + pixel], i);
  }
  return { bytes: PNG.sync.write(image, { colorType: 6 }), pixels: Buffer.from(image.data) };
}

function swapRedBlue(pixels: Buffer): Buffer {
  const out = Buffer.from(pixels);
  for (let i = 0; i < out.length; i += 4) {
    out[i] = pixels[i + 2]!;
    out[i + 2] = pixels[i]!;
  }
  return out;
}

/** Waits for what the test expects; the deadline only bounds a test that would hang, on however busy a machine. */
async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const WORKER_TOKEN = 'worker-token-of-the-tests-0123456789';

/** A gate the test opens: storage holds its answers until then. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('worker loop over HTTP', () => {
  let master: FakeMaster;
  let storage: FakeStorage;
  let kv: (Listening & { requests: SeenRequest[] }) | undefined;
  let worker: Worker | undefined;

  beforeEach(async () => {
    storage = new FakeStorage();
    master = new FakeMaster(storage);
    await Promise.all([master.start(), storage.start()]);
  });

  afterEach(async () => {
    await worker?.stop(5_000);
    worker = undefined;
    await Promise.all([master.close(), storage.close(), kv?.close()]);
    kv = undefined;
  });

  const startWorker = (
    env: Record<string, string> = {},
    options: { threadScript?: string; threadHeapMb?: number; tuning?: Partial<WorkerTuning> } = {},
  ): Worker => {
    const config = parseConfig(WorkerConfigSchema, {
      MASTER_URL: master.url,
      // Nothing listens here: the override and the signed URLs must be enough.
      KV_URL: 'http://127.0.0.1:9',
      POLL_WAIT_MS: '50',
      ERROR_BACKOFF_MS: '20',
      ERROR_BACKOFF_MAX_MS: '100',
      // One thread, so that tasks are taken one after another; the tests of concurrency say more.
      WORKER_CONCURRENCY: '1',
      ...env,
    });
    worker = createWorker(config, {
      logger: createLogger('worker', 'silent'),
      tuning: { minPollIntervalMs: 10, minHeartbeatMs: 20, ...options.tuning },
      threadScript: options.threadScript,
      threadHeapMb: options.threadHeapMb,
    });
    worker.start();
    return worker;
  };

  const queue = (bytes: Uint8Array, contentType: ImageType, op?: Operation, params?: OperationParams): string => {
    const id = master.enqueue({ contentType, op, params });
    storage.put('inProgress', id, Buffer.from(bytes), contentType);
    return id;
  };

  const ended = (id: string) => ['finished', 'failed'].includes(master.tasks.get(id)!.state);

  /** The task failed in its first attempt, never given back, with a reason that matches. */
  const expectFailedAtOnce = (id: string, reason: RegExp) => {
    expect(master.tasks.get(id)).toMatchObject({ state: 'failed', attempt: 1, reason: expect.stringMatching(reason) });
    expect(master.callsTo('workReleased')).toEqual([]);
    expect(storage.get('finished', id)).toBeUndefined();
  };

  const queuePng = (bytes: Buffer): string => {
    const id = master.enqueue({ contentType: 'image/png' });
    storage.put('inProgress', id, bytes, 'image/png');
    return id;
  };

  it('when a task is queued, then its swapped image is uploaded to finished/ and workFinished carries its lease', async () => {
    const { bytes, pixels } = makePng();
    const id = queuePng(bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const result = storage.get('finished', id)!;
    expect(result.contentType).toBe('image/png');
    const decoded = PNG.sync.read(result.bytes);
    expect([decoded.width, decoded.height]).toEqual([WIDTH, HEIGHT]);
    expect(decoded.data).toEqual(swapRedBlue(pixels));

    const claimToken = master.tasks.get(id)!.leaseToken;
    // With storage's receipt of the upload, as it came: master need not read the result back.
    const [receipt] = storage.receiptsIssued;
    expect(receipt).toMatchObject({ size: result.bytes.length, sha256: createHash('sha256').update(result.bytes).digest('hex') });
    expect(master.callsTo('workFinished').map((call) => call.body)).toEqual([{ id, leaseToken: claimToken, receipt }]);
    expect(master.callsTo('workFailed')).toEqual([]);
    // The upload came before workFinished, and both calls carry the task's request id.
    expect(storage.callsTo('put')[0]!.at).toBeLessThanOrEqual(master.callsTo('workFinished')[0]!.at);
    expect(storage.callsTo('get')[0]!.requestId).toBe(`${id}.1`);
  });

  it('when a task of each operation is queued, then each comes back done by its own operation and its parameters, turned ones with width and height swapped', async () => {
    const { bytes, pixels } = makePng();
    const paramsOf: Partial<Record<Operation, OperationParams>> = { resize: { width: 8 } };
    const tasks = OPERATIONS.map((op) => ({ op, params: paramsOf[op], id: queue(bytes, 'image/png', op, paramsOf[op]) }));
    startWorker();

    await until(() => tasks.every(({ id }) => ended(id)), 'every task to end');

    for (const { op, params, id } of tasks) {
      expect({ op, state: master.tasks.get(id)!.state }).toEqual({ op, state: 'finished' });
      const decoded = PNG.sync.read(storage.get('finished', id)!.bytes);
      const size = resultDimensions(op, params, { width: WIDTH, height: HEIGHT });
      expect({ op, size: [decoded.width, decoded.height] }).toEqual({ op, size: [size.width, size.height] });
      // The pixels (alpha included) are the operation's own, so the task's op and params reached the thread.
      const expected = applyOperation(op, { data: Buffer.from(pixels), width: WIDTH, height: HEIGHT }, params);
      expect({ op, pixels: [...decoded.data] }).toEqual({ op, pixels: [...expected.data] });
    }
  });

  it('when storage answers no receipt (it runs open), then workFinished goes without one', async () => {
    storage.receipts = false;
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    expect(master.callsTo('workFinished').map((call) => call.body)).toEqual([{ id, leaseToken: master.tasks.get(id)!.leaseToken }]);
  });

  it('when a task comes with signed URLs, then storage is reached through them alone (it refuses unsigned requests)', async () => {
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    // The worker knows no storage address: it can only have used the URLs, with their signatures.
    expect(storage.calls.map(({ route, signed }) => ({ route, signed }))).toEqual([
      { route: 'get', signed: true },
      { route: 'put', signed: true },
    ]);
    expect(storage.get('finished', id)!.contentType).toBe('image/png');
  });

  it('when the image cannot be decoded, then the task is reported failed with a reason and the loop goes on', async () => {
    const broken = queuePng(Buffer.from('\x89PNG\r\n\x1a\n but nothing after the signature', 'latin1'));
    const good = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(good)!.state === 'finished', 'the next task to finish');
    await until(() => master.tasks.get(broken)!.state === 'failed', 'the broken task to fail');

    const failed = master.tasks.get(broken)!;
    expect(failed.reason).toBe('could not decode image/png: the file is truncated or corrupt (unrecognised content at end of stream)');
    expect(master.callsTo('workFailed').map((call) => call.body)).toEqual([
      { id: broken, leaseToken: failed.leaseToken, reason: failed.reason },
    ]);
    expect(storage.get('finished', broken)).toBeUndefined();
  });

  it('when master answers 204, then the worker asks again with its waitMs', async () => {
    startWorker({ POLL_WAIT_MS: '30' });
    await until(() => master.callsTo('getWork').length >= 3, 'three polls');
    expect(master.callsTo('getWork').every((call) => (call.query as { waitMs: number }).waitMs === 30)).toBe(true);

    const id = queuePng(makePng().bytes);
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');
  });

  it('when master fails, then the worker backs off and asks again, reporting nothing', async () => {
    master.failingPolls.push(500, 502);
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    expect(master.callsTo('getWork').length).toBeGreaterThanOrEqual(3);
    expect(master.tasks.get(id)!.attempt).toBe(1);
    expect(master.callsTo('workFailed')).toEqual([]);
    expect(master.callsTo('workReleased')).toEqual([]);
  });

  it('when storage fails to download the source, then the task is released at once (not failed) and done again', async () => {
    storage.failingGets.push(500);
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const released = master.callsTo('workReleased');
    expect(released).toHaveLength(1);
    expect(released[0]!.body).toMatchObject({ id, reason: expect.stringMatching(/500/) });
    expect(master.tasks.get(id)!.attempt).toBe(2);
    expect(master.callsTo('workFailed')).toEqual([]);
  });

  it('when the upload of the result fails for a passing reason, then the task is released with the reason, not failed', async () => {
    storage.failingPuts.push(500);
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const released = master.callsTo('workReleased');
    expect(released).toHaveLength(1);
    expect(released[0]!.body).toEqual({
      id,
      leaseToken: expect.any(String),
      reason: expect.stringMatching(/^upload of the result: .*500.*storage could not write/),
    });
    expect(master.callsTo('workFailed')).toEqual([]);
    expect(master.tasks.get(id)!.attempt).toBe(2);
    // The release came before the second claim; the finish carries the second lease.
    expect(master.callsTo('workFinished').map((call) => call.body)).toEqual([
      { id, leaseToken: master.tasks.get(id)!.leaseToken, receipt: storage.receiptsIssued[0] },
    ]);
    expect((released[0]!.body as { leaseToken: string }).leaseToken).not.toBe(master.tasks.get(id)!.leaseToken);
  });

  it('when storage refuses the signed URL (403: expired), then the task is released, not failed', async () => {
    master.expiredUrls = 1;
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    expect(storage.calls[0]).toMatchObject({ route: 'get', signed: true });
    const released = master.callsTo('workReleased');
    expect(released).toHaveLength(1);
    expect(released[0]!.body).toMatchObject({ id, reason: expect.stringMatching(/refused the signed source URL/) });
    expect(master.callsTo('workFailed')).toEqual([]);
    expect(master.tasks.get(id)!.attempt).toBe(2);
  });

  it('when an attempt outlasts ATTEMPT_TIMEOUT_MS, then the task is given back and the loop goes on', async () => {
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    // Long enough that the second attempt (with a fresh thread, on a busy machine) fits in it.
    startWorker({ ATTEMPT_TIMEOUT_MS: '3000' });

    await until(() => master.callsTo('workReleased').length === 1, 'the release');
    expect(master.callsTo('workReleased')[0]!.body).toMatchObject({
      id,
      reason: expect.stringMatching(/ATTEMPT_TIMEOUT_MS \(3000 ms\)/),
    });
    held.open();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the next attempt to finish');
    expect(master.tasks.get(id)!.attempt).toBe(2);
    expect(master.callsTo('workFailed')).toEqual([]);
  });

  it('when work takes longer than the lease, then heartbeats keep it and finish it in one attempt', async () => {
    master.leaseMs = 300;
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => storage.callsTo('get').length === 1, 'the download to start');
    await delay(700);
    held.open();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const { leaseToken } = master.tasks.get(id)!;
    const heartbeats = master.callsTo('heartbeat');
    expect(heartbeats.length).toBeGreaterThanOrEqual(3);
    expect(heartbeats.every((call) => JSON.stringify(call.body) === JSON.stringify({ id, leaseToken }))).toBe(true);
    expect(master.tasks.get(id)!.attempt).toBe(1);
  });

  it('when the result URL expires with the lease, then the upload uses the one the last heartbeat renewed', async () => {
    master.leaseMs = 300;
    master.resultUrlsExpireWithLease = true;
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => storage.callsTo('get').length === 1, 'the download to start');
    // The claim's result URL has expired by now; only a renewed one opens the upload.
    await delay(700);
    held.open();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    expect(master.renewedResultUrls.length).toBeGreaterThanOrEqual(2);
    expect(master.callsTo('workReleased')).toEqual([]);
    expect(master.tasks.get(id)!.attempt).toBe(1);
    expect(storage.get('finished', id)).toBeDefined();
  });

  it('when master refuses a heartbeat, then the task is abandoned: nothing uploaded, nothing reported', async () => {
    const held = gate();
    storage.gate = held.promise;
    master.leaseMs = 300;
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => storage.callsTo('get').length === 1, 'the download to start');
    master.revokeLease(id);
    await until(() => master.callsTo('heartbeat').length >= 1, 'a heartbeat');
    await delay(50); // for the refusal to reach the worker
    held.open();
    await until(() => worker!.states.includes('polling') && master.callsTo('getWork').length >= 2, 'the next poll');

    expect(storage.get('finished', id)).toBeUndefined();
    expect(master.callsTo('workFinished')).toEqual([]);
    expect(master.callsTo('workFailed')).toEqual([]);
    expect(master.callsTo('workReleased')).toEqual([]);
  });

  it('when stop() is called during a task, then it stops claiming and resolves only once the task is finished', async () => {
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    const running = startWorker();
    await until(() => storage.callsTo('get').length === 1, 'the download to start');

    let stopped = false;
    const stopping = running.stop(5_000).then((drained) => {
      stopped = true;
      return drained;
    });
    await delay(150);
    expect(stopped).toBe(false);
    const pollsBefore = master.callsTo('getWork').length;

    held.open();
    await expect(stopping).resolves.toBe(true);
    expect(master.tasks.get(id)!.state).toBe('finished');
    expect(new Set(running.states)).toEqual(new Set(['stopped']));
    // No claim after the task in hand.
    master.enqueue({ contentType: 'image/png' });
    await delay(100);
    expect(master.callsTo('getWork').length).toBe(pollsBefore);
  });

  it('when the task in hand outlasts the deadline, then stop() releases it at once and says so', async () => {
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    const running = startWorker();
    await until(() => storage.callsTo('get').length === 1, 'the download to start');

    await expect(running.stop(100)).resolves.toBe(false);

    // Given back before stop() resolved: claimable again without waiting for the lease to expire.
    expect(master.callsTo('workReleased').map((call) => call.body)).toEqual([
      { id, leaseToken: master.tasks.get(id)!.leaseToken, reason: expect.stringMatching(/shutting down/) },
    ]);
    expect(master.tasks.get(id)!.state).toBe('queued');
    expect(new Set(running.states)).toEqual(new Set(['stopped']));
    held.open();
    await delay(50);
    expect(storage.callsTo('put')).toEqual([]);
    expect(master.callsTo('workFinished')).toEqual([]);
  });

  it('when stop() is called during a long poll, then the poll is aborted and stop() resolves without waiting for it', async () => {
    // The fake master holds an empty poll for the whole waitMs: 10 s, longer than this test may take.
    const running = startWorker({ POLL_WAIT_MS: '10000' });
    await until(() => master.callsTo('getWork').length === 1, 'the long poll');
    await delay(50);

    await expect(running.stop(30_000)).resolves.toBe(true);

    await until(() => master.abortedPolls === 1, 'master to see the poll abandoned');
    expect(master.callsTo('getWork')).toHaveLength(1);
    expect(new Set(running.states)).toEqual(new Set(['stopped']));
  });

  it('when WORKER_CONCURRENCY is 2, then two tasks are worked on at the same time', async () => {
    const held = gate();
    storage.gate = held.promise;
    const ids = [queuePng(makePng().bytes), queuePng(makePng().bytes)];
    startWorker({ WORKER_CONCURRENCY: '2' });

    await until(() => storage.callsTo('get').length === 2, 'two downloads in flight');
    held.open();
    await until(() => ids.every((id) => master.tasks.get(id)!.state === 'finished'), 'both tasks to finish');
  });

  it('when every thread is promised to a task, then no more tasks are claimed until one is free', async () => {
    const held = gate();
    storage.gate = held.promise;
    const ids = Array.from({ length: 5 }, () => queuePng(makePng().bytes));
    const running = startWorker({ WORKER_CONCURRENCY: '2' });
    const leased = () => [...master.tasks.values()].filter((task) => task.state === 'leased').length;

    await until(() => storage.callsTo('get').length === 2, 'two downloads in flight');
    await delay(150);

    // Two threads: two tasks held, the other loops wait for a slot instead of claiming.
    expect(leased()).toBe(2);
    expect(master.callsTo('getWork')).toHaveLength(2);
    expect(running.states.filter((state) => state === 'waiting_for_slot')).toHaveLength(2);
    held.open();
    await until(() => ids.every((id) => master.tasks.get(id)!.state === 'finished'), 'every task to finish');
    expect(master.callsTo('workReleased')).toEqual([]);
  });

  it('when a thread dies on a task, then the task is released (not failed), the thread replaced, and the next task done', async () => {
    // The fixture's thread dies of an uncaught exception on every 'invert' task.
    const doomed = master.enqueue({ contentType: 'image/png', op: 'invert' });
    storage.put('inProgress', doomed, makePng().bytes, 'image/png');
    const good = queuePng(makePng().bytes);
    const running = startWorker({}, { threadScript: path.join(__dirname, '..', 'fixtures', 'misbehaving-transform-thread.js') });

    await until(() => master.tasks.get(good)!.state === 'finished', 'the next task to finish');

    const released = master.callsTo('workReleased');
    expect(released.length).toBeGreaterThanOrEqual(1);
    for (const call of released) {
      expect(call.body).toMatchObject({ id: doomed, reason: expect.stringMatching(/image thread \d+ died: this thread dies on purpose/) });
    }
    expect(master.callsTo('workFailed')).toEqual([]);
    expect(running.pool.size).toBe(1);
  });

  it('when an attempt times out while its image is in a thread, then it is given back at once and the thread replaced', async () => {
    // The fixture's thread never ends a 'grayscale' task, as a decode that takes forever. This
    // is the task's last attempt: once given back, it ends failed and is not claimed again.
    const stuck = master.enqueue({ contentType: 'image/png', op: 'grayscale', attemptsUsed: 2 });
    storage.put('inProgress', stuck, makePng().bytes, 'image/png');
    // Long enough for a new thread to load its codecs and do the next task on a machine as busy as
    // CI's (several test processes on 2 cores took more than 2 s): the next task gets it.
    const running = startWorker(
      { ATTEMPT_TIMEOUT_MS: '5000' },
      { threadScript: path.join(__dirname, '..', 'fixtures', 'misbehaving-transform-thread.js') },
    );
    const [hungThread] = running.pool.threadIds;

    await until(() => master.callsTo('workReleased').length === 1, 'the release');
    expect(master.callsTo('workReleased')[0]!.body).toMatchObject({
      id: stuck,
      reason: expect.stringMatching(/ATTEMPT_TIMEOUT_MS \(5000 ms\)/),
    });
    expect(running.pool.threadIds).not.toContain(hungThread);

    const good = queuePng(makePng().bytes);
    await until(() => master.tasks.get(good)!.state === 'finished', 'the next task to finish');
    expect(master.tasks.get(good)!.attempt).toBe(1);
    expect(master.callsTo('workFailed')).toEqual([]);
  });

  it('when prefetching, then tasks are claimed as threads start encoding, and all are done', async () => {
    const ids = Array.from({ length: 6 }, () => queuePng(makePng().bytes));
    startWorker({ WORKER_CONCURRENCY: '2' }, { tuning: { prefetch: true } });

    await until(() => ids.every((id) => master.tasks.get(id)!.state === 'finished'), 'every task to finish');

    expect(ids.every((id) => master.tasks.get(id)!.attempt === 1)).toBe(true);
    expect(master.callsTo('workReleased')).toEqual([]);
  });

  it('when the worker stops, then its threads are stopped too', async () => {
    const id = queuePng(makePng().bytes);
    const running = startWorker({ WORKER_CONCURRENCY: '2' });
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');
    expect(running.pool.liveThreads).toBe(2);

    await expect(running.stop(1_000)).resolves.toBe(true);

    expect(running.pool.liveThreads).toBe(0);
  });

  it('when master wants WORKER_TOKEN, then the worker sends it on every call and gets its work', async () => {
    master.requireToken(WORKER_TOKEN);
    master.leaseMs = 300;
    const held = gate();
    storage.gate = held.promise;
    const id = queuePng(makePng().bytes);
    startWorker({ WORKER_TOKEN });

    await until(() => master.callsTo('heartbeat').length >= 1, 'a heartbeat');
    held.open();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    expect(new Set(master.requests.map((request) => request.path))).toEqual(new Set(['/getWork', '/heartbeat', '/workFinished']));
    expect(master.requests.every((request) => request.authorization === `Bearer ${WORKER_TOKEN}`)).toBe(true);
    // The signed URLs are the storage credential: the token is not handed to storage.
    expect(storage.calls.every((call) => call.signed)).toBe(true);
  });

  it('when master wants WORKER_TOKEN and the worker has none, then master refuses it and no work is claimed', async () => {
    master.requireToken(WORKER_TOKEN);
    const id = queuePng(makePng().bytes);
    startWorker();

    await until(() => master.requests.length >= 2, 'two refused polls');

    expect(master.callsTo('getWork')).toEqual([]);
    expect(master.requests.every((request) => request.authorization === undefined)).toBe(true);
    expect(master.tasks.get(id)!.state).toBe('queued');
  });

  it('when no override is given, then master is found through kv with WORKER_TOKEN, and storage through the signed URLs', async () => {
    master.requireToken(WORKER_TOKEN);
    kv = await startFakeKv({ master: master.url }, { workerToken: WORKER_TOKEN });
    const id = queuePng(makePng().bytes);
    const config = parseConfig(WorkerConfigSchema, { KV_URL: kv.url, POLL_WAIT_MS: '50', WORKER_TOKEN });
    worker = createWorker(config, { logger: createLogger('worker', 'silent') });
    worker.start();

    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    // Only master's instances were listed: the fake kv does not even know storage.
    const listings = kv.requests
      .map((request) => new URL(request.path, kv!.url))
      .map((url) => [url.pathname, url.searchParams.get('prefix')]);
    expect(new Set(listings.map((listing) => listing.join(' ')))).toEqual(new Set(['/keys services/master/']));
    expect(kv.requests[0]!.authorization).toBe(`Bearer ${WORKER_TOKEN}`);
  });

  describe('limits on what a decoder allocates', () => {
    const smallJpeg = () => jpeg().encode({ data: Buffer.alloc(8 * 8 * 4, 0x80), width: 8, height: 8 }, { quality: 80 });

    it('when a 35-byte GIF has a 65535x65535 frame in a 1x1 screen, then its task fails at once with the reason', async () => {
      const id = queue(gifWithHugeFrame(), 'image/gif');
      startWorker();

      await until(() => ended(id), 'the task to end');

      expectFailedAtOnce(id, /^image\/gif with a frame of 65535x65535 pixels is larger than the limit of 50000000 pixels$/);
    });

    it('when the frames of a GIF are each within MAX_IMAGE_PIXELS but not together, then its task fails', async () => {
      const id = queue(gifWithFrames(3, 1000, 1000), 'image/gif');
      startWorker({ MAX_IMAGE_PIXELS: '1000000' });

      await until(() => ended(id), 'the task to end');

      expectFailedAtOnce(id, /^image\/gif with 3 frames of 3000000 pixels in all is larger than the limit of 1000000 pixels$/);
    });

    it('when a JPEG has a second frame of 60000x60000 after its first, then its task fails naming that frame', async () => {
      const id = queue(jpegWithSecondFrame(smallJpeg(), 60000, 60000), 'image/jpeg');
      startWorker();

      await until(() => ended(id), 'the task to end');

      expectFailedAtOnce(id, /^image\/jpeg with a frame of 60000x60000 pixels is larger than the limit/);
    });

    it('when a 16-bit PNG needs more than WORKER_MEMORY_MB, then its task fails saying how much it needs', async () => {
      const id = queue(rgbaPng(2000, 2000, 16), 'image/png');
      startWorker({ WORKER_MEMORY_MB: '64' });

      await until(() => ended(id), 'the task to end');

      expectFailedAtOnce(id, /^image\/png of 2000x2000 pixels needs \d+ MB to transform, the worker has 64 MB \(WORKER_MEMORY_MB\)$/);
    });

    it('when two images each fit in WORKER_MEMORY_MB but not together, then the second waits for the first and both finish', async () => {
      // Some 46 MB each by the estimate: one at a time in 64 MB, though there are two threads.
      const ids = [queue(rgbaPng(1700, 1700, 8), 'image/png'), queue(rgbaPng(1700, 1700, 8), 'image/png')];
      const held = gate();
      storage.gate = held.promise;
      const running = startWorker({ WORKER_CONCURRENCY: '2', WORKER_MEMORY_MB: '64' });
      await until(() => storage.callsTo('get').length === 2, 'both downloads');
      const seen = new Set<string>();
      const sampler = setInterval(() => running.states.forEach((state) => seen.add(state)), 1);

      held.open();
      await until(() => ids.every((id) => master.tasks.get(id)!.state === 'finished'), 'both tasks to finish').finally(() =>
        clearInterval(sampler),
      );

      expect(seen).toContain('waiting_for_memory');
      expect(ids.map((id) => master.tasks.get(id)!.attempt)).toEqual([1, 1]);
      expect(master.callsTo('workReleased')).toEqual([]);
      expect(master.callsTo('workFailed')).toEqual([]);
    });

    it('when a thread dies of its heap limit on a task, then the task fails (not retried) and the next task is done', async () => {
      // jpeg-js puts an object per 8×8 block on the heap: over 100 MB for 4000×4000, past 64 MB.
      const heavy = queue(jpegDeclaring(smallJpeg(), 4000, 4000), 'image/jpeg');
      const good = queuePng(makePng().bytes);
      startWorker({}, { threadHeapMb: 64 });

      await until(() => master.tasks.get(good)!.state === 'finished', 'the next task to finish');

      expectFailedAtOnce(heavy, /more memory to transform than a transform thread may use \(its heap limit of 64 MB\)/);
    });

    it('when a transform outlasts TRANSFORM_TIMEOUT_MS, then its thread is replaced, the task fails, and the next task is done', async () => {
      // The fixture's thread never ends a 'grayscale' task, as a decode that takes forever.
      const stuck = queue(makePng().bytes, 'image/png', 'grayscale');
      const good = queuePng(makePng().bytes);
      // Long enough for a new thread to load its codecs on a busy machine: the next task gets it.
      const running = startWorker(
        { TRANSFORM_TIMEOUT_MS: '5000' },
        { threadScript: path.join(__dirname, '..', 'fixtures', 'misbehaving-transform-thread.js') },
      );
      const [hungThread] = running.pool.threadIds;

      await until(() => master.tasks.get(good)!.state === 'finished', 'the next task to finish');

      expectFailedAtOnce(stuck, /^the transform took longer than TRANSFORM_TIMEOUT_MS \(5000 ms\) and was stopped$/);
      expect(running.pool.threadIds).not.toContain(hungThread);
    });
  });
});
