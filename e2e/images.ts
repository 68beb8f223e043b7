import png from '@jimp/js-png';
import jpeg from '@jimp/js-jpeg';
import bmp from '@jimp/js-bmp';
import gif from '@jimp/js-gif';
import tiff from '@jimp/js-tiff';

export interface Bitmap {
  data: Buffer;
  width: number;
  height: number;
}

const codecs = { 'image/png': png(), 'image/jpeg': jpeg(), 'image/bmp': bmp(), 'image/gif': gif(), 'image/tiff': tiff() } as const;
export type Mime = keyof typeof codecs;

/** A deterministic test picture: gradients in every channel, so a swapped channel shows everywhere. */
export function makeBitmap(width: number, height: number, options: { alpha?: boolean; colors?: number } = {}): Bitmap {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 4;
      let r = Math.round((x / (width - 1)) * 255);
      let g = Math.round((y / (height - 1)) * 255);
      let b = Math.round(((x + y) / (width + height - 2)) * 200) + 20;
      if (options.colors) {
        const step = 256 / options.colors;
        [r, g, b] = [r, g, b].map((v) => Math.min(255, Math.floor(v / step) * step + Math.floor(step / 2))) as [number, number, number];
      }
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = options.alpha ? (x * 7 + y * 3) % 256 : 255;
    }
  }
  return { data, width, height };
}

export async function encode(mime: Mime, bitmap: Bitmap): Promise<Buffer> {
  // Encoders may change the buffer they are given (BMP does), so each gets a copy.
  const copy = { ...bitmap, data: Buffer.from(bitmap.data) };
  const codec = codecs[mime] as { encode: (b: Bitmap, o?: unknown) => Buffer | Promise<Buffer> };
  return Buffer.from(await codec.encode(copy, mime === 'image/jpeg' ? { quality: 95 } : undefined));
}

export function decode(mime: Mime, bytes: Buffer): Bitmap {
  const decoded = (codecs[mime] as { decode: (b: Buffer) => Bitmap }).decode(bytes);
  return { data: Buffer.from(decoded.data), width: decoded.width, height: decoded.height };
}

/** The channel difference between two bitmaps after mapping the first's pixels. */
export function compare(
  expected: Bitmap,
  actual: Bitmap,
  map: (r: number, g: number, b: number, a: number) => [number, number, number, number],
): { maxDiff: number; meanDiff: number; alphaChanged: number } {
  if (expected.width !== actual.width || expected.height !== actual.height) {
    throw new Error(`size ${actual.width}x${actual.height}, expected ${expected.width}x${expected.height}`);
  }
  let maxDiff = 0;
  let sum = 0;
  let alphaChanged = 0;
  for (let i = 0; i < expected.data.length; i += 4) {
    const want = map(expected.data[i]!, expected.data[i + 1]!, expected.data[i + 2]!, expected.data[i + 3]!);
    for (let c = 0; c < 3; c += 1) {
      const diff = Math.abs(want[c]! - actual.data[i + c]!);
      maxDiff = Math.max(maxDiff, diff);
      sum += diff;
    }
    if (want[3] !== actual.data[i + 3]) alphaChanged += 1;
  }
  return { maxDiff, meanDiff: sum / ((expected.data.length / 4) * 3), alphaChanged };
}
