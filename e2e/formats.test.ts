import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jpeg from '@jimp/js-jpeg';
import { GifCodec, GifFrame } from 'gifwrap';
import { AcceptedSchema, readDeclaredDimensions, type Operation } from '@pixelmill/contracts';
import { jpegWithOrientation } from '@pixelmill/contracts/testing';
import { compare, decode, encode, makeBitmap } from './images';
import { waitUntilEnded } from './upload-client';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;

/** TIFF, JPEG with an EXIF orientation, animated GIF and BMP with alpha through the whole pipeline, uploaded as the page does. */
describe('image formats end to end', () => {
  let dir: string;
  let stack: Stack;
  let frontend: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-formats-'));
    stack = await startStack({ dataDir: path.join(dir, 'data'), logDir: path.join(dir, 'logs'), freePorts: true });
    frontend = stack.urls.frontend!;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Uploads through the page's form, waits for the end, and returns the result's type and bytes. */
  async function transform(bytes: Buffer, filename: string, op: Operation): Promise<{ type: string | null; output: Buffer }> {
    const form = new FormData();
    form.append('image', new Blob([bytes]), filename);
    form.append('op', op);
    const response = await fetch(`${frontend}/newImage`, { method: 'POST', body: form, headers: { accept: 'application/json' } });
    expect(response.status).toBe(202);
    const { id } = AcceptedSchema.parse(await response.json());
    expect((await waitUntilEnded([frontend], [id], 60_000)).get(id)).toEqual({ state: 'finished' });
    const result = await fetch(`${frontend}/image/get?id=${id}`);
    expect(result.status).toBe(200);
    return { type: result.headers.get('content-type'), output: Buffer.from(await result.arrayBuffer()) };
  }

  it('swaps red and blue exactly in a TIFF with transparency, and the result is a TIFF', async () => {
    const input = await encode('image/tiff', makeBitmap(40, 30, { alpha: true }));

    const { type, output } = await transform(input, 'scan.tiff', 'swap-red-blue');

    expect(type).toBe('image/tiff');
    expect(compare(decode('image/tiff', input), decode('image/tiff', output), (r, g, b, a) => [b, g, r, a])).toEqual({
      maxDiff: 0,
      meanDiff: 0,
      alphaChanged: 0,
    });
  });

  it('swaps red and blue in a 32-bit BMP with transparency, and the result is a BMP with the same alpha', async () => {
    // BITMAPV5HEADER, BI_BITFIELDS, masks R, G, B, A; rows bottom-up; each pixel B, G, R, A.
    const { data, width, height } = makeBitmap(24, 16, { alpha: true });
    const pixel = (file: Buffer, at: number) => [file[at + 2]!, file[at + 1]!, file[at]!, file[at + 3]!];
    const input = Buffer.alloc(138 + width * height * 4);
    input.write('BM', 0, 'latin1');
    // File size, pixels' offset, header size, width, height (positive: bottom-up), compression, pixels' size, masks.
    const fields = [
      [2, input.length],
      [10, 138],
      [14, 124],
      [18, width],
      [22, height],
      [30, 3],
      [34, width * height * 4],
      [54, 0xff0000],
      [58, 0xff00],
      [62, 0xff],
      [66, 0xff000000],
    ] as const;
    for (const [at, value] of fields) input.writeUInt32LE(value, at);
    input.writeUInt16LE(1, 26);
    input.writeUInt16LE(32, 28);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        input.set([data[i + 2]!, data[i + 1]!, data[i]!, data[i + 3]!], 138 + ((height - 1 - y) * width + x) * 4);
      }
    }

    const { type, output } = await transform(input, 'sprite.bmp', 'swap-red-blue');

    expect(type).toBe('image/bmp');
    expect(readDeclaredDimensions('image/bmp', output)).toEqual({ width, height });
    // 32 bits a pixel, bottom-up and with the input's masks: each pixel is where it was in the input, B, G, R, A.
    const layout = (file: Buffer) => [file.readUInt16LE(28), file.readInt32LE(22), ...[54, 58, 62, 66].map((at) => file.readUInt32LE(at))];
    expect(layout(output)).toEqual(layout(input));
    expect(output.length - output.readUInt32LE(10)).toBe(width * height * 4);
    const [inputAt, outputAt] = [138, output.readUInt32LE(10)];
    for (let i = 0; i < width * height * 4; i += 4) {
      const [r, g, b, a] = pixel(input, inputAt + i);
      expect(pixel(output, outputAt + i)).toEqual([b, g, r, a]);
    }
  });

  it('turns a portrait photo stored on its side (EXIF orientation 6) upright, and the result carries no EXIF', async () => {
    // Upright 32×48: red top half, blue bottom half. Stored turned a quarter anticlockwise (48×32),
    // as a camera held upright writes it: the stored left side is the upright top.
    const stored = Buffer.alloc(48 * 32 * 4);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 48; x++) stored.set(x < 24 ? [230, 20, 20, 255] : [30, 30, 220, 255], (y * 48 + x) * 4);
    }
    const input = Buffer.from(jpegWithOrientation(jpeg().encode({ data: stored, width: 48, height: 32 }, { quality: 95 }), 6));
    expect(readDeclaredDimensions('image/jpeg', input)).toEqual({ width: 32, height: 48 });

    const { type, output } = await transform(input, 'portrait.jpg', 'invert');

    expect(type).toBe('image/jpeg');
    const result = decode('image/jpeg', output);
    expect([result.width, result.height]).toEqual([32, 48]);
    const at = (x: number, y: number) => [...result.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 3)];
    // Inverted red above, inverted blue below (away from the middle, where JPEG blends the colours).
    for (const [x, y, colour] of [
      [3, 3, [25, 235, 235]],
      [28, 12, [25, 235, 235]],
      [3, 44, [225, 225, 35]],
      [28, 36, [225, 225, 35]],
    ] as const) {
      at(x, y).forEach((value, c) => expect(Math.abs(value - colour[c]!)).toBeLessThanOrEqual(16));
    }
    expect(output.includes(Buffer.from('Exif\0\0', 'latin1'))).toBe(false);
  });

  it('inverts every frame of an animated GIF, keeping each delay, the loop count and transparency', async () => {
    const frame = (colour: number[], delay: number) => {
      const data = Buffer.alloc(20 * 10 * 4);
      for (let i = 0; i < 200; i++) data.set(i % 20 === 0 ? [0, 0, 0, 0] : [...colour, 255], i * 4);
      return new GifFrame(20, 10, data, { delayCentisecs: delay });
    };
    const colours = [
      [200, 30, 30],
      [20, 180, 40],
      [10, 20, 240],
    ];
    const input = (await new GifCodec().encodeGif([frame(colours[0]!, 10), frame(colours[1]!, 25), frame(colours[2]!, 40)], { loops: 2 }))
      .buffer;

    const { type, output } = await transform(input, 'animation.gif', 'invert');

    expect(type).toBe('image/gif');
    const gif = await new GifCodec().decodeGif(output);
    expect([gif.width, gif.height, gif.loops]).toEqual([20, 10, 2]);
    expect(gif.frames.map((f) => f.delayCentisecs)).toEqual([10, 25, 40]);
    gif.frames.forEach((f, i) => {
      expect([f.bitmap.width, f.bitmap.height]).toEqual([20, 10]);
      expect([...f.bitmap.data.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
      expect([...f.bitmap.data.subarray(4, 8)]).toEqual([...colours[i]!.map((v) => 255 - v), 255]);
    });
  });
});
