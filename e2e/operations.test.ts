import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AcceptedSchema, ErrorBodySchema } from '@pixelmill/contracts';
import { decode, encode, makeBitmap, type Bitmap, type Mime } from './images';
import { waitUntilEnded } from './upload-client';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;

/** Operations that change an image's size, through the six built services as separate processes. */
describe('pixelmill end to end: operations that change the size', () => {
  let dir: string;
  let stack: Stack;
  let frontend: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-e2e-ops-'));
    stack = await startStack({ dataDir: path.join(dir, 'data'), logDir: path.join(dir, 'logs'), freePorts: true });
    frontend = stack.urls.frontend!;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Uploads as the upload page does: the fields first, then the image. */
  const uploadForm = (bytes: Buffer, mime: Mime, fields: Record<string, string>) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('image', new Blob([new Uint8Array(bytes)], { type: mime }), `picture.${mime.split('/')[1]}`);
    return fetch(`${frontend}/newImage`, { method: 'POST', body: form, headers: { accept: 'application/json' } });
  };
  const uploadRaw = (bytes: Buffer, mime: Mime, query: string) =>
    fetch(`${frontend}/newImage?${query}`, { method: 'POST', body: new Uint8Array(bytes), headers: { 'content-type': mime } });

  /** Waits for the upload's task to end finished, and decodes its result. */
  const resultOf = async (response: Response, mime: Mime): Promise<Bitmap> => {
    expect(response.status).toBe(202);
    const { id } = AcceptedSchema.parse(await response.json());
    expect((await waitUntilEnded([frontend], [id], 60_000)).get(id)).toEqual({ state: 'finished' });
    const result = await fetch(`${frontend}/image/get?id=${id}`);
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe(mime);
    return decode(mime, Buffer.from(await result.arrayBuffer()));
  };

  const pixel = ({ data, width }: Bitmap, x: number, y: number): number[] => [
    ...data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4),
  ];

  it('when a non-square PNG is turned a quarter clockwise, then the task finishes with width and height swapped, every pixel in its place', async () => {
    const source = makeBitmap(64, 48, { alpha: true });
    const turned = await resultOf(await uploadForm(await encode('image/png', source), 'image/png', { op: 'rotate-90' }), 'image/png');
    expect([turned.width, turned.height]).toEqual([48, 64]);
    // Clockwise: the source's left column becomes the top row, read from the bottom up.
    for (const [x, y] of [
      [0, 0],
      [47, 0],
      [0, 63],
      [20, 33],
    ] as const) {
      expect(pixel(turned, x, y)).toEqual(pixel(source, y, 47 - x));
    }
  });

  it('when a non-square JPEG is turned three quarters, then the task finishes with width and height swapped', async () => {
    const turned = await resultOf(
      await uploadRaw(await encode('image/jpeg', makeBitmap(40, 24)), 'image/jpeg', 'op=rotate-270'),
      'image/jpeg',
    );
    expect([turned.width, turned.height]).toEqual([24, 40]);
  });

  it('when an image is resized by the query, then the result has the size asked for, the missing side from the aspect ratio', async () => {
    const source = makeBitmap(64, 48);
    const resized = await resultOf(await uploadRaw(await encode('image/png', source), 'image/png', 'op=resize&width=32'), 'image/png');
    expect([resized.width, resized.height]).toEqual([32, 24]);
    // The gradients run the same way: red grows to the right, green downwards.
    expect(pixel(resized, 0, 0)[0]).toBeLessThan(30);
    expect(pixel(resized, 31, 0)[0]).toBeGreaterThan(225);
    expect(pixel(resized, 0, 23)[1]).toBeGreaterThan(225);
  });

  it('when an image is resized by the form to both sides, then the result has them, in its own format', async () => {
    const bytes = await encode('image/bmp', makeBitmap(30, 20));
    const resized = await resultOf(await uploadForm(bytes, 'image/bmp', { op: 'resize', width: '90', height: '7' }), 'image/bmp');
    expect([resized.width, resized.height]).toEqual([90, 7]);
  });

  it('when a width comes with another operation, then the stack answers 400 saying so', async () => {
    const response = await uploadRaw(await encode('image/png', makeBitmap(8, 8)), 'image/png', 'op=invert&width=4');
    expect(response.status).toBe(400);
    expect(ErrorBodySchema.parse(await response.json()).error.message).toBe('width goes with op=resize only, not with op=invert');
  });
});
