import path from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import { PNG } from 'pngjs';
import type { Operation } from '@pixelmill/contracts';
import { ImageCodec, type ImageCodecOptions } from '../../src/domain/image-codec';
import { transformImage } from '../../src/domain/image-transformer';
import jpeg from '@jimp/js-jpeg';
import { ImageDecodeError, PermanentWorkError } from '../../src/domain/work-errors';
import {
  ThreadCrashedError,
  ThreadOutOfMemoryError,
  TransformPool,
  TransformTimeoutError,
  type TransformPoolOptions,
} from '../../src/threads/transform-pool';
import { jpegDeclaring, rgbaPng } from '@pixelmill/contracts/testing';

const CODEC: ImageCodecOptions = { pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 10_000_000, maxMemoryBytes: 2 ** 30 };
const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** A noisy opaque PNG: a few tens of milliseconds of work at 384×384. */
function noisyPng(size: number, seed = 1): Buffer {
  const image = new PNG({ width: size, height: size });
  let state = seed;
  const { data } = image;
  // Byte by byte: data.set() with an array of the test's realm is slow under jest.
  for (let i = 0; i < data.length; i += 4) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = state & 0xff;
    data[i + 1] = (state >> 8) & 0xff;
    data[i + 2] = (i >> 4) & 0xff;
    data[i + 3] = 255;
  }
  return PNG.sync.write(image, { colorType: 2 });
}

const job = (source: Uint8Array, op: Operation = 'swap-red-blue') => ({
  source: Buffer.from(source),
  contentType: 'image/png' as const,
  op,
});

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('transform pool', () => {
  const pools: TransformPool[] = [];
  const startPool = (options: Partial<TransformPoolOptions> = {}): TransformPool => {
    const pool = new TransformPool({ size: 2, codec: CODEC, ...options });
    pools.push(pool);
    return pool;
  };

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });

  it('when a job runs, then it runs on another thread and gives the same bytes as the main thread would', async () => {
    const pool = startPool();
    const source = noisyPng(64);

    const output = await pool.run(job(source));

    expect(isMainThread).toBe(true);
    expect(output.timings.threadId).not.toBe(threadId);
    expect(pool.threadIds).toContain(output.timings.threadId);
    const expected = await transformImage(new ImageCodec(CODEC), source, 'image/png', 'swap-red-blue');
    expect(output.bytes.equals(expected)).toBe(true);
  });

  it('when a job is given, then its source is moved to the thread, not copied', async () => {
    const pool = startPool();
    const source = job(noisyPng(64));
    expect(source.source.length).toBeGreaterThan(0);

    const running = pool.run(source);

    // The ArrayBuffer was transferred: the sender's view is detached.
    expect(source.source.length).toBe(0);
    await running;
  });

  it('when more jobs than threads are given, then as many run at once as there are threads, and all finish', async () => {
    const pool = startPool({ size: 2 });
    const source = noisyPng(384);
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, pool.running);
    }, 1);

    const outputs = await Promise.all(Array.from({ length: 6 }, () => pool.run(job(source)))).finally(() => clearInterval(sampler));

    expect(most).toBe(2);
    expect(new Set(outputs.map((output) => output.timings.threadId)).size).toBe(2);
    expect(outputs.every((output) => output.bytes.length > 0)).toBe(true);
    // The last ones waited for a free thread.
    expect(Math.max(...outputs.map((output) => output.queuedMs))).toBeGreaterThan(0);
  });

  it('when an image cannot be decoded in a thread, then run() rejects with the ImageDecodeError the main thread would throw', async () => {
    const pool = startPool();
    const truncated = noisyPng(64).subarray(0, 200);
    let mainThreadError: unknown;
    try {
      new ImageCodec(CODEC).decode(truncated, 'image/png');
    } catch (err) {
      mainThreadError = err;
    }

    const failure = pool.run(job(truncated));

    await expect(failure).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(failure).rejects.toThrow((mainThreadError as Error).message);
    expect((mainThreadError as Error).message).toBe('could not decode image/png: the file is truncated or corrupt (it ends too early)');
  });

  it('when an image is larger than the pixel limit by its header, then the thread refuses it before decoding', async () => {
    const pool = startPool({ codec: { ...CODEC, maxPixels: 100 } });
    await expect(pool.run(job(noisyPng(64)))).rejects.toThrow('image/png of 64x64 pixels is larger than the limit of 100 pixels');
  });

  it('when a thread dies of an uncaught exception, then its job fails with ThreadCrashedError and a new thread takes its place', async () => {
    const pool = startPool({ size: 1, script: path.join(FIXTURES, 'misbehaving-transform-thread.js') });
    const [before] = pool.threadIds;

    await expect(pool.run(job(noisyPng(32), 'invert'))).rejects.toBeInstanceOf(ThreadCrashedError);

    expect(pool.size).toBe(1);
    expect(pool.threadIds).not.toContain(before);
    const output = await pool.run(job(noisyPng(32)));
    expect(output.timings.threadId).toBe(pool.threadIds[0]);
    await pool.close();
    expect(pool.liveThreads).toBe(0);
  });

  it('when a thread exits while it holds a job, then the job fails with ThreadCrashedError naming the exit code', async () => {
    const pool = startPool({ size: 1, script: path.join(FIXTURES, 'exiting-transform-thread.js') });
    const [before] = pool.threadIds;

    await expect(pool.run(job(noisyPng(32)))).rejects.toThrow(/died: it exited with code 3/);

    expect(pool.threadIds).toHaveLength(1);
    expect(pool.threadIds).not.toContain(before);
  });

  it('when the signal aborts during a job, then run() rejects at once with the reason and the thread is replaced', async () => {
    const pool = startPool({ size: 1, script: path.join(FIXTURES, 'misbehaving-transform-thread.js') });
    const [before] = pool.threadIds;
    const controller = new AbortController();
    const reason = new Error('the lease is gone');

    // The fixture's 'grayscale' never ends: only stopping its thread frees it.
    const hung = pool.run(job(noisyPng(32), 'grayscale'), { signal: controller.signal });
    await delay(50);
    expect(pool.running).toBe(1);
    controller.abort(reason);

    await expect(hung).rejects.toBe(reason);
    expect(pool.threadIds).not.toContain(before);
    await expect(pool.run(job(noisyPng(32)))).resolves.toMatchObject({ bytes: expect.any(Buffer) });
  });

  it('when the signal aborts while a job waits for a thread, then it is dropped and the others go on', async () => {
    const pool = startPool({ size: 1 });
    const controller = new AbortController();
    const first = pool.run(job(noisyPng(256)));
    const second = pool.run(job(noisyPng(32)), { signal: controller.signal });

    controller.abort(new Error('not wanted any more'));

    await expect(second).rejects.toThrow('not wanted any more');
    await expect(first).resolves.toMatchObject({ bytes: expect.any(Buffer) });
    expect(pool.running).toBe(0);
  });

  it('when a job runs past the time limit, then its thread is stopped and replaced, and the job fails for good', async () => {
    const pool = startPool({ size: 1, timeoutMs: 50 });
    // 9 megapixels: hundreds of milliseconds of decoding and encoding, well past 50 ms.
    const slow = rgbaPng(3000, 3000, 8);
    const [before] = pool.threadIds;

    const failure = pool.run(job(slow));

    await expect(failure).rejects.toBeInstanceOf(TransformTimeoutError);
    await expect(failure).rejects.toBeInstanceOf(PermanentWorkError);
    await expect(failure).rejects.toThrow('the transform took longer than TRANSFORM_TIMEOUT_MS (50 ms) and was stopped');
    expect(pool.threadIds).toHaveLength(1);
    expect(pool.threadIds).not.toContain(before);
  });

  it('when a thread dies of its heap limit, then its job fails for good, and the next job runs on a new thread', async () => {
    const pool = startPool({ size: 1, codec: { ...CODEC, maxPixels: 50_000_000 }, resourceLimits: { maxOldGenerationSizeMb: 64 } });
    // jpeg-js puts an object on the heap for each 8×8 block of the size the header declares:
    // 750 000 of them for 4000×4000 at 4:4:4, over 100 MB.
    const small = jpeg().encode({ data: Buffer.alloc(8 * 8 * 4, 0x80), width: 8, height: 8 }, { quality: 80 });
    const heavy = Buffer.from(jpegDeclaring(small, 4000, 4000));
    const [before] = pool.threadIds;

    const failure = pool.run({ source: heavy, contentType: 'image/jpeg', op: 'invert' });

    await expect(failure).rejects.toBeInstanceOf(ThreadOutOfMemoryError);
    await expect(failure).rejects.toBeInstanceOf(PermanentWorkError);
    await expect(failure).rejects.toThrow(/more memory to transform than a transform thread may use \(its heap limit of 64 MB\)/);
    expect(pool.threadIds).not.toContain(before);
    await expect(pool.run(job(noisyPng(32)))).resolves.toMatchObject({ bytes: expect.any(Buffer) });
  });

  it('when a job starts encoding, then onEncoding is called before the result comes', async () => {
    const pool = startPool();
    const events: string[] = [];

    await pool.run(job(noisyPng(64)), { onEncoding: () => events.push('encoding') }).then(() => events.push('done'));

    expect(events).toEqual(['encoding', 'done']);
  });

  it('when the pool is closed, then its threads have exited and run() refuses new jobs', async () => {
    const pool = startPool();
    await pool.run(job(noisyPng(32)));

    await pool.close();

    expect(pool.liveThreads).toBe(0);
    await expect(pool.run(job(noisyPng(32)))).rejects.toThrow('the transform pool is closed');
  });

  it('when the thread script is missing, then the pool refuses to start and says to build', () => {
    expect(() => new TransformPool({ size: 1, codec: CODEC, script: path.join(FIXTURES, 'nothing-here.js') })).toThrow(
      /is missing: build the worker first/,
    );
  });
});
