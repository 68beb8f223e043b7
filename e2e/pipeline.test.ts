import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AcceptedSchema, ErrorBodySchema, resultKey, TaskStatusSchema, type Operation } from '@pixelmill/contracts';
import { compare, decode, encode, makeBitmap, type Bitmap, type Mime } from './images';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;

/** The whole pipeline: the six built services as separate processes, found through kv. */
describe('pixelmill end to end', () => {
  let dir: string;
  let stack: Stack;
  let frontend: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-e2e-'));
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      env: { LOG_LEVEL: 'info' },
      envFor: { master: { HOUSEKEEPING_INTERVAL_MS: '200' } },
    });
    frontend = stack.urls.frontend!;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const upload = async (bytes: Buffer, filename: string, op?: Operation) => {
    const form = new FormData();
    form.append('image', new Blob([bytes]), filename);
    if (op) form.append('op', op);
    return fetch(`${frontend}/newImage`, { method: 'POST', body: form, headers: { accept: 'application/json' } });
  };

  const waitUntilDone = async (id: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // The long poll answers as soon as the image is done.
      const response = await fetch(`${frontend}/image/isReady?id=${id}&waitMs=10000`);
      expect(response.status).toBe(200);
      const status = TaskStatusSchema.parse(await response.json());
      if (status.state === 'finished' || status.state === 'failed') return status;
      if (Date.now() > deadline) throw new Error(`${id} still ${status.state} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const processImage = async (mime: Mime, bitmap: Bitmap, op?: Operation) => {
    const input = await encode(mime, bitmap);
    const response = await upload(input, `picture.${mime.split('/')[1]}`, op);
    expect(response.status).toBe(202);
    const { id, state } = AcceptedSchema.parse(await response.json());
    expect(state).toBe('not_started');
    const status = await waitUntilDone(id);
    expect(status).toEqual({ id, state: 'finished' });
    const result = await fetch(`${frontend}/image/get?id=${id}`);
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe(mime);
    const output = Buffer.from(await result.arrayBuffer());
    return { id, input, output, before: decode(mime, input), after: decode(mime, output) };
  };

  const swapped = (r: number, g: number, b: number, a: number): [number, number, number, number] => [b, g, r, a];

  it('swaps red and blue exactly in a PNG with transparency, alpha untouched; keeps the result and drops the source', async () => {
    const { id, output, before, after } = await processImage('image/png', makeBitmap(64, 48, { alpha: true }));
    expect(compare(before, after, swapped)).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
    const storage = path.join(stack.dataDir, 'storage');
    expect(fs.readFileSync(path.join(storage, 'finished', resultKey(id, 1)))).toEqual(output);
    // The source is deleted by master's housekeeping once the task has ended.
    const deadline = Date.now() + 10_000;
    while (fs.existsSync(path.join(storage, 'inProgress', id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(path.join(storage, 'inProgress', id))).toBe(false);
  });

  it('swaps red and blue exactly in an opaque PNG', async () => {
    const { before, after } = await processImage('image/png', makeBitmap(80, 60));
    expect(compare(before, after, swapped)).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
  });

  it('swaps red and blue exactly in a BMP', async () => {
    const { before, after } = await processImage('image/bmp', makeBitmap(50, 40));
    expect(compare(before, after, swapped)).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
  });

  it('swaps red and blue in a JPEG within the loss of re-encoding', async () => {
    const { before, after } = await processImage('image/jpeg', makeBitmap(64, 64));
    const diff = compare(before, after, swapped);
    expect(diff.meanDiff).toBeLessThan(2);
    expect(diff.maxDiff).toBeLessThan(24);
    // Without the swap the difference is large: the check can tell.
    expect(compare(before, after, (r, g, b, a) => [r, g, b, a]).meanDiff).toBeGreaterThan(20);
  });

  it('swaps red and blue in a GIF within the loss of its palette', async () => {
    const { before, after } = await processImage('image/gif', makeBitmap(40, 30, { colors: 4 }));
    const diff = compare(before, after, swapped);
    expect(diff.meanDiff).toBeLessThan(4);
    expect(compare(before, after, (r, g, b, a) => [r, g, b, a]).meanDiff).toBeGreaterThan(20);
  });

  it('inverts an image when asked to', async () => {
    const { before, after } = await processImage('image/png', makeBitmap(32, 32, { alpha: true }), 'invert');
    expect(compare(before, after, (r, g, b, a) => [255 - r, 255 - g, 255 - b, a])).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
  });

  it('turns an image gray when asked to', async () => {
    const { before, after } = await processImage('image/png', makeBitmap(32, 32, { alpha: true }), 'grayscale');
    const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
    const diff = compare(before, after, (r, g, b, a) => {
      const y = luma(r, g, b);
      return [y, y, y, a];
    });
    expect(diff.maxDiff).toBeLessThanOrEqual(1);
    expect(diff.alphaChanged).toBe(0);
  });

  it('accepts a raw image body from an API client', async () => {
    const input = await encode('image/png', makeBitmap(16, 16));
    const response = await fetch(`${frontend}/newImage?op=invert`, {
      method: 'POST',
      body: input,
      headers: { 'content-type': 'image/png' },
    });
    expect(response.status).toBe(202);
    const { id } = AcceptedSchema.parse(await response.json());
    expect((await waitUntilDone(id)).state).toBe('finished');
  });

  it('with the defaults of a stack on loopback, one client uploading as fast as it can is never throttled', async () => {
    // The old default (120 a minute, bursts of 30) refused this client from its 31st upload on.
    const input = await encode('image/png', makeBitmap(8, 8));
    const statuses: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < 100) {
          const response = await fetch(`${frontend}/newImage?op=invert`, {
            method: 'POST',
            body: input,
            headers: { 'content-type': 'image/png' },
          });
          await response.arrayBuffer();
          statuses.push(response.status);
        }
      }),
    );
    expect(statuses).toHaveLength(100);
    expect(statuses.filter((status) => status !== 202)).toEqual([]);
  });

  it('refuses a file that is not an image with 415, and keeps nothing of it', async () => {
    const inProgress = path.join(stack.dataDir, 'storage', 'inProgress');
    const before = new Set(fs.readdirSync(inProgress));
    const response = await upload(Buffer.from('this is text, not a picture'), 'notes.png');
    expect(response.status).toBe(415);
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('unsupported_media_type');
    // Housekeeping may delete sources meanwhile; nothing new may appear.
    expect(fs.readdirSync(inProgress).filter((name) => !before.has(name))).toEqual([]);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    const unknown = randomUUID();
    const ready = await fetch(`${frontend}/image/isReady?id=${unknown}`);
    expect(ready.status).toBe(404);
    expect(ErrorBodySchema.parse(await ready.json()).error.code).toBe('not_found');
    expect((await fetch(`${frontend}/image/get?id=${unknown}`)).status).toBe(404);
    expect((await fetch(`${frontend}/image/isReady?id=not-an-id`)).status).toBe(400);
  });

  it('reports an image that does not decode as failed, with the reason', async () => {
    const truncated = (await encode('image/png', makeBitmap(64, 64))).subarray(0, 100);
    const response = await upload(truncated, 'broken.png');
    expect(response.status).toBe(202);
    const { id } = AcceptedSchema.parse(await response.json());
    const status = await waitUntilDone(id);
    expect(status.state).toBe('failed');
    expect(status.error).toMatch(/decode/i);
    expect((await fetch(`${frontend}/image/get?id=${id}`)).status).toBe(409);
  });

  it('registers every server in kv', async () => {
    const response = await fetch(`${stack.kvUrl}/keys?prefix=services/`, {
      headers: { authorization: `Bearer ${stack.tokens!.internal}` },
    });
    const { items } = (await response.json()) as { items: Array<{ key: string; value: string }> };
    // One instance of each, under services/<name>/<instance>.
    expect(items.map((item) => item.key.split('/').slice(0, 2).join('/')).sort()).toEqual([
      'services/frontend',
      'services/kv',
      'services/master',
      'services/storage',
      'services/taskdb',
    ]);
    expect(items.every((item) => /^services\/[a-z]+\/[0-9a-f]{16}$/.test(item.key))).toBe(true);
    expect(items.find((item) => item.key.startsWith('services/master/'))?.value).toBe(stack.urls.master);
  });
});
