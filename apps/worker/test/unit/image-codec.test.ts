import bmp from '@jimp/js-bmp';
import gif from '@jimp/js-gif';
import jpeg from '@jimp/js-jpeg';
import { GifCodec, GifFrame } from 'gifwrap';
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import type { ImageType } from '@pixelmill/contracts';
import type { RgbaBitmap } from '../../src/domain/bitmap';
import { ImageCodec } from '../../src/domain/image-codec';
import { transformImage } from '../../src/domain/image-transformer';
import { ImageDecodeError } from '../../src/domain/work-errors';

const WIDTH = 16;
const HEIGHT = 12;

/** A test picture whose red and blue differ everywhere, so a missed swap cannot pass. */
function picture(alphaAt: (x: number, y: number) => number = () => 255): RgbaBitmap {
  const data = Buffer.alloc(WIDTH * HEIGHT * 4);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 4;
      data[i] = 200 - x * 3;
      data[i + 1] = 90 + y * 5;
      data[i + 2] = 30 + x * 2;
      data[i + 3] = alphaAt(x, y);
    }
  }
  return { data, width: WIDTH, height: HEIGHT };
}

const copy = (bitmap: RgbaBitmap): RgbaBitmap => ({ ...bitmap, data: Buffer.from(bitmap.data) });

function swapped(bitmap: RgbaBitmap): RgbaBitmap {
  const out = copy(bitmap);
  for (let i = 0; i < out.data.length; i += 4) {
    out.data[i] = bitmap.data[i + 2]!;
    out.data[i + 2] = bitmap.data[i]!;
  }
  return out;
}

/** Largest difference of any channel (alpha included) between two bitmaps of the same size. */
function maxDifference(a: RgbaBitmap, b: RgbaBitmap): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

const encodePng = (bitmap: RgbaBitmap): Buffer => {
  const image = new PNG({ width: bitmap.width, height: bitmap.height });
  bitmap.data.copy(image.data);
  return PNG.sync.write(image, { colorType: 6 });
};
/** A GIF of exactly these pixels (the picture has fewer than 256 colours): alpha 0 is transparent. */
const encodeGif = async (bitmap: RgbaBitmap): Promise<Buffer> => (await new GifCodec().encodeGif([new GifFrame(copy(bitmap))], {})).buffer;

/** PNG colour type from the IHDR chunk: 2 = RGB, 6 = RGBA. */
const pngColorType = (bytes: Buffer): number => bytes[25]!;

/** The filter type byte of each row of a (non-interlaced, 8-bit) PNG: its IDAT data, inflated, row by row. */
function pngRowFilters(bytes: Buffer): number[] {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const channels = pngColorType(bytes) === 6 ? 4 : 3;
  const idat: Buffer[] = [];
  for (let offset = 8; offset < bytes.length;) {
    const length = bytes.readUInt32BE(offset);
    if (bytes.toString('latin1', offset + 4, offset + 8) === 'IDAT') idat.push(bytes.subarray(offset + 8, offset + 8 + length));
    offset += 12 + length;
  }
  const rows = inflateSync(Buffer.concat(idat));
  const stride = 1 + width * channels;
  expect(rows.length).toBe(stride * height);
  return Array.from({ length: height }, (_, y) => rows[y * stride]!);
}

/** Pixels that do not compress to nothing: noise over a gradient, every channel different. */
function noisyPicture(width: number, height: number, alphaAt: (x: number, y: number) => number = () => 255): RgbaBitmap {
  const data = Buffer.alloc(width * height * 4);
  let state = 7;
  const random = () => (state = (state * 1103515245 + 12345) >>> 0) % 40;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 3 + random()) % 256;
      data[i + 1] = (y * 5 + random()) % 256;
      data[i + 2] = (x + y + random()) % 256;
      data[i + 3] = alphaAt(x, y);
    }
  }
  return { data, width, height };
}

describe('image codec', () => {
  const codec = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 1_000_000, maxMemoryBytes: 2 ** 30 });

  const roundTrip = async (bytes: Buffer, type: ImageType) => {
    const source = codec.decode(bytes, type);
    const expected = swapped(source);
    const output = await transformImage(codec, bytes, type, 'swap-red-blue');
    return { source, expected, output, result: codec.decode(output, type) };
  };

  it('when a PNG with transparency goes through swap-red-blue, then the result has exactly the swapped pixels and alpha', async () => {
    const original = picture((x, y) => (x === 0 ? 0 : (x * 16 + y) % 256));
    const { source, expected, output, result } = await roundTrip(encodePng(original), 'image/png');
    expect(source.data).toEqual(original.data);
    expect(pngColorType(output)).toBe(6);
    expect(result.data).toEqual(expected.data);
    expect(result.data[3]).toBe(0);
  });

  it('when an opaque PNG goes through swap-red-blue, then it is written as RGB with exactly the swapped pixels', async () => {
    const original = picture();
    const { expected, output, result } = await roundTrip(encodePng(original), 'image/png');
    expect(pngColorType(output)).toBe(2);
    expect(result.data).toEqual(expected.data);
  });

  it.each([
    ['opaque (RGB)', () => 255, 2],
    ['with transparency (RGBA)', (x: number, y: number) => (x + y) % 256, 6],
  ])(
    'when a noisy PNG %s goes through swap-red-blue, then every row is written with the Sub filter and the pixels are exact',
    async (_, alphaAt, colorType) => {
      const original = noisyPicture(97, 61, alphaAt);
      const { source, expected, output, result } = await roundTrip(encodePng(original), 'image/png');
      expect(source.data).toEqual(original.data);
      expect(pngColorType(output)).toBe(colorType);
      expect(new Set(pngRowFilters(output))).toEqual(new Set([1]));
      expect(result.data).toEqual(expected.data);
    },
  );

  it('when a JPEG goes through swap-red-blue, then the result is the swapped image within JPEG loss', async () => {
    const bytes = jpeg().encode(picture(), { quality: 100 });
    const { source, expected, output, result } = await roundTrip(bytes, 'image/jpeg');
    expect(output.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(maxDifference(result, expected)).toBeLessThanOrEqual(12);
    // The swap is far larger than the loss: the unswapped source is not within the tolerance.
    expect(maxDifference(result, source)).toBeGreaterThan(100);
  });

  it('when a BMP goes through swap-red-blue, then the result has exactly the swapped pixels, opaque', async () => {
    const original = picture();
    const bytes = bmp().encode(copy(original));
    const { source, expected, output, result } = await roundTrip(bytes, 'image/bmp');
    expect(source.data).toEqual(original.data);
    expect(output.subarray(0, 2).toString('latin1')).toBe('BM');
    expect(result.data).toEqual(expected.data);
  });

  it('when a GIF goes through swap-red-blue, then the result has exactly the swapped pixels and transparency', async () => {
    const original = picture((x) => (x === 0 ? 0 : 255));
    // GIF keeps no colour for transparent pixels: they decode as 0, 0, 0, 0.
    for (let i = 0; i < original.data.length; i += 4) if (original.data[i + 3] === 0) original.data.fill(0, i, i + 3);
    const { source, expected, output, result } = await roundTrip(await encodeGif(original), 'image/gif');
    expect(source.data).toEqual(original.data);
    expect(output.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect(result.data).toEqual(expected.data);
  });

  it('when pixels have more colours than a GIF holds, then they are quantized closely and transparency stays', async () => {
    const size = 64;
    const data = Buffer.alloc(size * size * 4);
    for (let i = 0, pixel = 0; i < data.length; i += 4, pixel++) {
      const x = pixel % size;
      const y = Math.floor(pixel / size);
      data.set([x * 4, y * 4, 255 - x * 2, y < 4 ? 0 : 255], i);
    }
    const pixels: RgbaBitmap = { data, width: size, height: size };
    const result = codec.decode(await codec.encode(copy(pixels), 'image/gif'), 'image/gif');
    let sum = 0;
    let max = 0;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      expect(result.data[i + 3]).toBe(data[i + 3]);
      if (data[i + 3] === 0) continue;
      for (let c = 0; c < 3; c++) {
        const difference = Math.abs(result.data[i + c]! - data[i + c]!);
        sum += difference;
        max = Math.max(max, difference);
        count += 1;
      }
    }
    // 4096 colours in 255: about 16 colours share each palette entry.
    expect(sum / count).toBeLessThanOrEqual(5);
    expect(max).toBeLessThanOrEqual(16);
  });

  describe('when the bytes cannot be decoded, then an ImageDecodeError says why', () => {
    const png = encodePng(picture());
    const jpg = jpeg().encode(picture(), { quality: 90 });

    const damaged = Buffer.concat([png.subarray(0, 40), Buffer.alloc(20, 0x55), png.subarray(60)]);
    it.each<[string, Buffer, string, RegExp]>([
      [
        'a truncated PNG',
        png.subarray(0, png.length >> 1),
        'image/png',
        /^could not decode image\/png: the file is truncated or corrupt \(it ends too early\)$/,
      ],
      [
        'a PNG cut after its header',
        png.subarray(0, 40),
        'image/png',
        /^could not decode image\/png: the file is truncated or corrupt \(it ends too early\)$/,
      ],
      ['a PNG with a damaged chunk', damaged, 'image/png', /^could not decode image\/png: .+/],
      [
        'a truncated JPEG',
        jpg.subarray(0, jpg.length >> 1),
        'image/jpeg',
        /^could not decode image\/jpeg: the file is truncated or corrupt/,
      ],
      ['a truncated GIF', Buffer.from('GIF89a\x10\x00\x0c\x00', 'latin1'), 'image/gif', /^could not decode image\/gif: .+/],
      ['a JPEG declared as PNG', jpg, 'image/png', /^could not decode image\/png: the bytes are image\/jpeg$/],
      ['text declared as PNG', Buffer.from('hello'), 'image/png', /^could not decode image\/png: the bytes are not an image of/],
      ['an empty body', Buffer.alloc(0), 'image/jpeg', /^could not decode image\/jpeg: the bytes are not an image/],
      ['a type without a codec', png, 'image/webp', /^could not decode image\/webp: no codec for this content type$/],
    ])('%s', (_name, bytes, type, message) => {
      let thrown: unknown;
      try {
        codec.decode(bytes, type);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ImageDecodeError);
      expect((thrown as Error).message).toMatch(message);
    });
  });

  describe('when an image has more pixels than the limit, then it is refused', () => {
    const small = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 100, maxMemoryBytes: 2 ** 30 });

    it.each<[ImageType, () => Buffer | Promise<Buffer>]>([
      ['image/png', () => encodePng(picture())],
      ['image/jpeg', () => jpeg().encode(picture(), { quality: 90 })],
      ['image/bmp', () => bmp().encode(picture())],
      ['image/gif', () => gif().encode(picture())],
    ])('%s', async (type, make) => {
      const bytes = await make();
      expect(() => small.decode(bytes, type)).toThrow(/larger than the limit of 100 pixels/);
    });

    it('reads the size a PNG declares before decoding anything', () => {
      const bomb = encodePng(picture());
      bomb.writeUInt32BE(100_000, 16);
      bomb.writeUInt32BE(100_000, 20);
      // The header's checksum no longer matches: only a check before decoding can name the size.
      expect(() => codec.decode(bomb, 'image/png')).toThrow('image/png of 100000x100000 pixels is larger than the limit of 1000000 pixels');
    });
  });
});

describe('transformImage', () => {
  it('when the checkpoint between steps throws, then the work stops there and nothing is encoded', async () => {
    const codec = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 1_000_000, maxMemoryBytes: 2 ** 30 });
    const encode = jest.spyOn(codec, 'encode');
    const bytes = encodePng(picture(() => 255));
    let checks = 0;
    const stop = new Error('given up');

    await expect(
      transformImage(codec, bytes, 'image/png', 'swap-red-blue', async () => {
        checks += 1;
        throw stop;
      }),
    ).rejects.toBe(stop);
    expect(checks).toBe(1);
    expect(encode).not.toHaveBeenCalled();

    await transformImage(codec, bytes, 'image/png', 'swap-red-blue', async () => {
      checks += 1;
    });
    expect(checks).toBe(3);
  });
});
