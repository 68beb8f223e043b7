import bmp from '@jimp/js-bmp';
import jpeg from '@jimp/js-jpeg';
import tiff from '@jimp/js-tiff';
import { GifCodec, GifFrame } from 'gifwrap';
import { deflateSync } from 'node:zlib';
import { readDeclaredDimensions, type ExifOrientation } from '@pixelmill/contracts';
import { craftTiff, gifWithFrameSizes, jpegWithOrientation, tiffDeclaring, type TiffEntry } from '@pixelmill/contracts/testing';
import type { RgbaBitmap } from '../../src/domain/bitmap';
import { planDecode } from '../../src/domain/decode-plan';
import { ImageCodec } from '../../src/domain/image-codec';
import { transformImage } from '../../src/domain/image-transformer';
import { ImageDecodeError } from '../../src/domain/work-errors';

const MB = 2 ** 20;
const codec = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 95, maxPixels: 1_000_000, maxMemoryBytes: 1024 * MB });

/** A picture whose every pixel differs from its neighbours, so a misplaced pixel shows. */
function picture(width: number, height: number, alphaAt: (x: number, y: number) => number = () => 255): RgbaBitmap {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++)
      data.set([(x * 37 + y * 11) % 256, (y * 53 + 7) % 256, (x * 5 + y * 29 + 100) % 256, alphaAt(x, y)], (y * width + x) * 4);
  }
  return { data, width, height };
}

const pixelAt = ({ data, width }: RgbaBitmap, x: number, y: number): number[] => [
  ...data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4),
];

/** A quarter turn clockwise, written out pixel by pixel (the operation is tested apart). */
function turnedClockwise(bitmap: RgbaBitmap): RgbaBitmap {
  const { width, height } = bitmap;
  const data = Buffer.alloc(bitmap.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++)
      bitmap.data.copy(data, (x * height + (height - 1 - y)) * 4, (y * width + x) * 4, (y * width + x) * 4 + 4);
  }
  return { data, width: height, height: width };
}

/** The error `act` throws, which must be an ImageDecodeError. */
function refusal(act: () => unknown): string {
  try {
    act();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageDecodeError);
    return (err as Error).message;
  }
  throw new Error('it was not refused');
}

/** RGB (or RGBA) samples of a bitmap, row after row, split into strips of `rowsPerStrip` rows. */
function stripsOf({ data, width, height }: RgbaBitmap, samples: 3 | 4, rowsPerStrip: number): Uint8Array[] {
  const packed = new Uint8Array(width * height * samples);
  for (let i = 0; i < width * height; i++) packed.set(data.subarray(i * 4, i * 4 + samples), i * samples);
  const rowBytes = width * samples;
  const strips: Uint8Array[] = [];
  for (let y = 0; y < height; y += rowsPerStrip) strips.push(packed.subarray(y * rowBytes, Math.min(height, y + rowsPerStrip) * rowBytes));
  return strips;
}

function rgbTiffEntries(width: number, height: number, samples: 3 | 4, rowsPerStrip: number, compression = 1): TiffEntry[] {
  return [
    { tag: 256, type: 'short', values: [width] },
    { tag: 257, type: 'short', values: [height] },
    { tag: 258, type: 'short', values: Array<number>(samples).fill(8) },
    { tag: 259, type: 'short', values: [compression] },
    { tag: 262, type: 'short', values: [2] },
    { tag: 277, type: 'short', values: [samples] },
    { tag: 278, type: 'short', values: [rowsPerStrip] },
    ...(samples === 4 ? [{ tag: 338, type: 'short' as const, values: [2] }] : []),
  ];
}

/** Codes packed as TIFF's LZW packs them: most significant bit first, 9 bits growing to 12 one code early. */
function packLzw(codes: number[]): Uint8Array {
  const bits: number[] = [];
  let width = 9;
  let next = 258;
  codes.forEach((code, i) => {
    for (let b = width - 1; b >= 0; b--) bits.push((code >> b) & 1);
    if (code === 256) {
      width = 9;
      next = 258;
    } else if (i > 0 && codes[i - 1] !== 256 && code !== 257) {
      next += 1;
      if (next + 1 === 1 << width && width < 12) width += 1;
    }
  });
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => (out[i >> 3]! |= bit << (7 - (i & 7))));
  return out;
}

describe('TIFF', () => {
  it('when an RGB TIFF in strips (little-endian) is turned a quarter, then the result is a TIFF of exactly the turned pixels', async () => {
    const original = picture(13, 7);
    const source = Buffer.from(craftTiff(rgbTiffEntries(13, 7, 3, 3), { strips: stripsOf(original, 3, 3) }));

    const output = await transformImage(codec, source, 'image/tiff', 'rotate-90');

    expect(output.subarray(0, 4).toString('latin1')).toBe('MM\0*');
    // The directory is at the start: the size is known from the file's head.
    expect(readDeclaredDimensions('image/tiff', output.subarray(0, 512))).toEqual({ width: 7, height: 13 });
    const result = codec.decode(output, 'image/tiff');
    expect(result).toEqual(turnedClockwise(original));
    // Opaque: written as RGB, 3 bytes a pixel, which another reader decodes the same.
    expect(output.length).toBeLessThan(13 * 7 * 3 + 400);
    const other = tiff().decode(output);
    expect(Buffer.from(other.data)).toEqual(result.data);
  });

  it('when a big-endian RGBA TIFF with transparency goes through swap-red-blue, then pixels and alpha are exact and alpha stays unassociated', async () => {
    const original = picture(9, 6, (x, y) => (x * 40 + y) % 256);
    const source = Buffer.from(tiff().encode({ ...original, data: Buffer.from(original.data) }));
    expect(source.subarray(0, 2).toString('latin1')).toBe('MM');

    const output = await transformImage(codec, source, 'image/tiff', 'swap-red-blue');

    const result = codec.decode(output, 'image/tiff');
    for (let i = 0; i < original.data.length; i += 4) {
      expect([...result.data.subarray(i, i + 4)]).toEqual([
        original.data[i + 2],
        original.data[i + 1],
        original.data[i],
        original.data[i + 3],
      ]);
    }
    // ExtraSamples (338) = 2: unassociated alpha.
    expect(output.includes(Buffer.from([0x01, 0x52, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02]))).toBe(true);
  });

  it.each([
    ['Deflate', 8, (strip: Uint8Array) => deflateSync(strip)],
    ['PackBits (literal runs)', 32773, (strip: Uint8Array) => Buffer.concat([...strip].map((byte) => Buffer.from([0, byte])))],
  ])('when a TIFF is compressed with %s, then it decodes to its pixels', (_name, compression, compress) => {
    const original = picture(10, 6);
    const strips = stripsOf(original, 3, 4).map(compress);
    const source = Buffer.from(craftTiff(rgbTiffEntries(10, 6, 3, 4, compression), { strips, littleEndian: false }));
    expect(codec.decode(source, 'image/tiff')).toEqual(original);
  });

  it('when a TIFF is compressed with LZW, then it decodes to its pixels', () => {
    // One grey row of 8 pixels, 1 1 1 1 1 1 1 1: "1", then the entries "1 1" (258) and "1 1 1" (259), then "1 1".
    const entries: TiffEntry[] = [
      { tag: 256, type: 'short', values: [8] },
      { tag: 257, type: 'short', values: [1] },
      { tag: 258, type: 'short', values: [8] },
      { tag: 259, type: 'short', values: [5] },
      { tag: 262, type: 'short', values: [1] },
    ];
    const source = Buffer.from(craftTiff(entries, { strips: [packLzw([256, 1, 258, 259, 258, 257])] }));
    expect(codec.decode(source, 'image/tiff').data).toEqual(Buffer.from(Array<number[]>(8).fill([1, 1, 1, 255]).flat()));
  });

  it('when a TIFF has two pages, then only the first is decoded and the result is that page', async () => {
    const first = picture(6, 4);
    const page = craftTiff(rgbTiffEntries(6, 4, 3, 4), { strips: stripsOf(first, 3, 4) });
    // A second directory declaring another size, appended, and the first directory's "next" pointing to it.
    const second = craftTiff(rgbTiffEntries(50, 50, 3, 50), { strips: [new Uint8Array(50 * 50 * 3)] });
    const file = Buffer.concat([page, second]);
    const firstIfd = file.readUInt32LE(4);
    const entries = file.readUInt16LE(firstIfd);
    const secondIfd = page.length + second[4]! + (second[5]! << 8);
    file.writeUInt32LE(secondIfd, firstIfd + 2 + entries * 12);

    const output = await transformImage(codec, file, 'image/tiff', 'invert');

    const result = codec.decode(output, 'image/tiff');
    expect([result.width, result.height]).toEqual([6, 4]);
    expect(pixelAt(result, 0, 0)).toEqual([255 - first.data[0]!, 255 - first.data[1]!, 255 - first.data[2]!, 255]);
  });

  describe('when a TIFF would decode to more than it may, then it is refused before anything is decoded', () => {
    const small = { maxPixels: 1_000_000, maxMemoryBytes: 64 * MB };

    it('a page declaring 100000x100000 pixels in 150 bytes', () => {
      const bomb = Buffer.from(tiffDeclaring(100_000, 100_000, { stripBytes: 16 }));
      expect(bomb.length).toBeLessThan(200);
      expect(refusal(() => planDecode(bomb, 'image/tiff', small))).toBe(
        'image/tiff of 100000x100000 pixels is larger than the limit of 1000000 pixels',
      );
      expect(refusal(() => codec.decode(bomb, 'image/tiff'))).toMatch(/larger than the limit of 1000000 pixels/);
    });

    it('a page within the pixel limit whose 16-bit samples need more memory than the worker has (its 8-bit twin fits)', () => {
      const rgba = (bits: number) =>
        Buffer.from(
          craftTiff(
            [
              { tag: 256, type: 'long', values: [1000] },
              { tag: 257, type: 'long', values: [1000] },
              { tag: 258, type: 'short', values: Array<number>(4).fill(bits) },
              { tag: 262, type: 'short', values: [2] },
              { tag: 277, type: 'short', values: [4] },
            ],
            { strips: [new Uint8Array(16)] },
          ),
        );
      const limits = { maxPixels: 1_000_000, maxMemoryBytes: 12 * MB };
      expect(refusal(() => planDecode(rgba(16), 'image/tiff', limits))).toMatch(
        /^image\/tiff of 1000x1000 pixels needs \d+ MB to transform, the worker has 12 MB/,
      );
      expect(planDecode(rgba(8), 'image/tiff', limits).memoryBytes).toBeLessThanOrEqual(12 * MB);
    });

    it.each([
      ['Deflate', 8, deflateSync(Buffer.alloc(10 * MB))],
      ['LZW', 5, packLzw([256, 0, ...Array.from({ length: 3000 }, (_, i) => 258 + i), 257])],
      ['PackBits', 32773, Buffer.from(Array<number[]>(2000).fill([0x81, 0]).flat())],
    ])('a strip of %s data that decodes past its strip', (_name, compression, strip) => {
      const file = Buffer.from(craftTiff(rgbTiffEntries(10, 10, 3, 10, compression), { strips: [strip] }));
      expect(strip.length).toBeLessThan(20_000);
      expect(refusal(() => codec.decode(file, 'image/tiff'))).toBe(
        'could not decode image/tiff: the file is truncated or corrupt (its strip 1 decodes past the 300 bytes a strip of its rows holds)',
      );
    });

    it('LZW data that refers to an entry not made yet (which the decoder would follow round stale entries)', () => {
      const file = Buffer.from(craftTiff(rgbTiffEntries(10, 10, 3, 10, 5), { strips: [packLzw([256, 1, 500, 257])] }));
      expect(refusal(() => codec.decode(file, 'image/tiff'))).toMatch(/its strip 1 decodes past/);
    });
  });

  it.each<[string, Uint8Array, RegExp]>([
    [
      'a tiled page',
      craftTiff([...rgbTiffEntries(8, 8, 3, 8), { tag: 322, type: 'short', values: [16] }], { strips: [new Uint8Array(192)] }),
      /variant of the format that is not supported \(tiled pages; only pages in strips are\)$/,
    ],
    [
      'JPEG compression',
      craftTiff(rgbTiffEntries(8, 8, 3, 8, 7), { strips: [new Uint8Array(192)] }),
      /not supported \(compression 7; uncompressed, LZW, Deflate and PackBits pages are\)$/,
    ],
    [
      'CMYK',
      craftTiff(
        rgbTiffEntries(8, 8, 4, 8).map((entry) => (entry.tag === 262 ? { ...entry, values: [5] } : entry)),
        { strips: [new Uint8Array(256)] },
      ),
      /not supported \(photometric interpretation 5; grey, RGB and palette pages are\)$/,
    ],
    [
      'a strip past the end of the file',
      (() => {
        const file = craftTiff(rgbTiffEntries(8, 8, 3, 8), { strips: [new Uint8Array(192)] });
        return file.subarray(0, file.length - 10);
      })(),
      /truncated or corrupt \(its strip 1 lies outside the file\)$/,
    ],
    [
      'a first directory past the end of the file',
      (() => {
        const file = craftTiff(rgbTiffEntries(8, 8, 3, 8), { strips: [new Uint8Array(192)] });
        new DataView(file.buffer).setUint32(4, 0xfffffff0, true);
        return file;
      })(),
      /^could not decode image\/tiff: the file is truncated or corrupt \(its first directory cannot be read\)$/,
    ],
  ])('when a TIFF has %s, then it is refused saying so', (_name, file, message) => {
    expect(refusal(() => codec.decode(Buffer.from(file), 'image/tiff'))).toMatch(message);
  });
});

describe('JPEG orientation', () => {
  // The picture as it is to be seen: 64×32, four quarters of flat colours.
  const RED = [230, 20, 20];
  const GREEN = [20, 200, 40];
  const BLUE = [30, 30, 220];
  const WHITE = [250, 250, 250];
  const UPRIGHT = { width: 64, height: 32 };
  const uprightAt = (x: number, y: number): number[] => (y < 16 ? (x < 32 ? RED : GREEN) : x < 32 ? BLUE : WHITE);

  /** Where a stored pixel is seen, by the EXIF specification's table of orientations. */
  const seenAt = (o: ExifOrientation, sx: number, sy: number, w: number, h: number): [number, number] =>
    ({
      1: [sx, sy],
      2: [w - 1 - sx, sy],
      3: [w - 1 - sx, h - 1 - sy],
      4: [sx, h - 1 - sy],
      5: [sy, sx], // stored row 0 is the left side, column 0 the top
      6: [h - 1 - sy, sx], // row 0 is the right side, column 0 the top
      7: [h - 1 - sy, w - 1 - sx], // row 0 is the right side, column 0 the bottom
      8: [sy, w - 1 - sx], // row 0 is the left side, column 0 the bottom
    })[o] as [number, number];

  /** The JPEG a camera held in orientation `o` stores for the upright picture. */
  function storedJpeg(o: ExifOrientation): Buffer {
    const [w, h] = o >= 5 ? [UPRIGHT.height, UPRIGHT.width] : [UPRIGHT.width, UPRIGHT.height];
    const data = Buffer.alloc(w * h * 4);
    for (let sy = 0; sy < h; sy++) {
      for (let sx = 0; sx < w; sx++) data.set([...uprightAt(...seenAt(o, sx, sy, w, h)), 255], (sy * w + sx) * 4);
    }
    return Buffer.from(jpegWithOrientation(jpeg().encode({ data, width: w, height: h }, { quality: 95 }), o, o % 2 === 0));
  }

  /** Marker segments between the start marker and the scan. */
  function segments(bytes: Buffer): number[] {
    const markers: number[] = [];
    for (let at = 2; at + 4 <= bytes.length && bytes[at] === 0xff && bytes[at + 1] !== 0xda; at += 2 + bytes.readUInt16BE(at + 2)) {
      markers.push(bytes[at + 1]!);
    }
    return markers;
  }

  const close = (actual: number[], expected: number[]) => actual.slice(0, 3).every((value, i) => Math.abs(value - expected[i]!) <= 12);

  it.each<ExifOrientation>([1, 2, 3, 4, 5, 6, 7, 8])(
    'when a JPEG has orientation %s, then it is turned upright before the operation (mirror) and written without EXIF',
    async (o) => {
      const source = storedJpeg(o);
      expect(readDeclaredDimensions('image/jpeg', source)).toEqual(UPRIGHT);

      const output = await transformImage(codec, source, 'image/jpeg', 'mirror');

      const result = codec.decode(output, 'image/jpeg');
      expect([result.width, result.height]).toEqual([64, 32]);
      // Mirrored upright picture: green, red above; white, blue below.
      const corners = [pixelAt(result, 2, 2), pixelAt(result, 61, 2), pixelAt(result, 2, 29), pixelAt(result, 61, 29)];
      expect(corners.map((corner, i) => close(corner, [GREEN, RED, WHITE, BLUE][i]!))).toEqual([true, true, true, true]);
      expect(segments(output)).not.toContain(0xe1);
      expect(output.includes(Buffer.from('Exif\0\0', 'latin1'))).toBe(false);
      expect(readDeclaredDimensions('image/jpeg', output)).toEqual(UPRIGHT);
    },
  );
});

describe('animated GIF', () => {
  const SCREEN = { width: 12, height: 8 };

  /** A frame's own pixels: `colour` everywhere, but transparent where `hole` says. */
  function framePixels(width: number, height: number, colour: number[], hole: (x: number, y: number) => boolean = () => false): Buffer {
    const data = Buffer.alloc(width * height * 4);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) data.set(hole(x, y) ? [0, 0, 0, 0] : [...colour, 255], (y * width + x) * 4);
    return data;
  }

  const corner = (x: number, y: number) => x < 2 && y < 2;
  const lastColumn = (x: number) => x === 11;

  /**
   * Three frames: a red screen with a transparent corner (kept), a blue 4×3 patch over it (its
   * rectangle cleared afterwards), a green screen with holes at the corner and in the last column.
   */
  async function animation(): Promise<Buffer> {
    const base = new GifFrame(12, 8, framePixels(12, 8, [200, 30, 30], corner), { delayCentisecs: 10, disposalMethod: 1 });
    const patch = new GifFrame(4, 3, framePixels(4, 3, [20, 40, 220]), { xOffset: 5, yOffset: 2, delayCentisecs: 20, disposalMethod: 2 });
    const last = new GifFrame(
      12,
      8,
      framePixels(12, 8, [30, 220, 60], (x, y) => corner(x, y) || lastColumn(x)),
      { delayCentisecs: 35 },
    );
    return (await new GifCodec().encodeGif([base, patch, last], { loops: 3 })).buffer;
  }

  /** What a viewer shows for each frame, written out: the third shows the first's red through its last column. */
  function shown(): RgbaBitmap[] {
    const first = framePixels(12, 8, [200, 30, 30], corner);
    const second = Buffer.from(first);
    for (let y = 2; y < 5; y++) for (let x = 5; x < 9; x++) second.set([20, 40, 220, 255], (y * 12 + x) * 4);
    const third = framePixels(12, 8, [30, 220, 60], corner);
    for (let y = 0; y < 8; y++) third.set([200, 30, 30, 255], (y * 12 + 11) * 4);
    return [first, second, third].map((data) => ({ data, ...SCREEN }));
  }

  it('when a GIF of 3 frames goes through rotate-90, then every frame is turned, with its delay, and the loop count is kept', async () => {
    const output = await transformImage(codec, await animation(), 'image/gif', 'rotate-90');

    const gif = await new GifCodec().decodeGif(output);
    expect([gif.width, gif.height]).toEqual([8, 12]);
    expect(gif.loops).toBe(3);
    expect(gif.frames.map((frame) => frame.delayCentisecs)).toEqual([10, 20, 35]);
    const frames = codec.decodeImage(output, 'image/gif').frames;
    expect(frames).toEqual(shown().map(turnedClockwise));
  });

  it('when a GIF has one frame, then it stays a still GIF of one frame', async () => {
    const still = (await new GifCodec().encodeGif([new GifFrame(12, 8, framePixels(12, 8, [10, 20, 30]))], {})).buffer;
    const image = codec.decodeImage(still, 'image/gif');
    expect(image.frames).toHaveLength(1);
    expect(image.animation).toBeUndefined();
    const output = await transformImage(codec, still, 'image/gif', 'invert');
    expect((await new GifCodec().decodeGif(output)).frames).toHaveLength(1);
  });

  it('when the frames of a GIF, each drawn on its whole screen, pass the pixel limit together, then it is refused before decoding', () => {
    // Three 10×10 frames are 300 pixels of their own, but three 100×100 pictures once drawn.
    const file = Buffer.from(
      gifWithFrameSizes({ width: 100, height: 100 }, Array<{ width: number; height: number }>(3).fill({ width: 10, height: 10 })),
    );
    const limited = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 20_000, maxMemoryBytes: 1024 * MB });
    expect(refusal(() => limited.decodeImage(file, 'image/gif'))).toBe(
      'image/gif with 3 frames of 30000 pixels in all is larger than the limit of 20000 pixels',
    );
    // Every frame and its encoding is counted: more than one screen's worth.
    expect(planDecode(file, 'image/gif', { maxPixels: 1_000_000, maxMemoryBytes: 1024 * MB }).memoryBytes).toBeGreaterThan(3 * 10_000 * 4);
  });
});

describe('BMP', () => {
  /** Four levels of alpha, each next to the others, so a pixel whose alpha moved shows. */
  const ALPHAS = [0, 128, 255, 64];
  const translucent = (width: number, height: number) => picture(width, height, (x, y) => ALPHAS[(x + 2 * y) % ALPHAS.length]!);

  const swapRedBlue = ({ data, width, height }: RgbaBitmap): RgbaBitmap => {
    const out = Buffer.from(data);
    for (let i = 0; i < out.length; i += 4) [out[i], out[i + 2]] = [data[i + 2]!, data[i]!];
    return { data: out, width, height };
  };

  interface Bmp32Layout {
    /** 40 (BITMAPINFOHEADER), 56 (V3), 108 (V4), 124 (V5). */
    headerSize?: number;
    /** 0 BI_RGB, 3 BI_BITFIELDS, 6 BI_ALPHABITFIELDS. */
    compression?: number;
    alphaMask?: number;
    topDown?: boolean;
  }

  /**
   * A 32-bit BMP written byte by byte as other programs write one: masks in the header from V3 on,
   * after a 40-byte one with BI_BITFIELDS (red, green, blue) or BI_ALPHABITFIELDS (and alpha);
   * each pixel B, G, R and then its alpha (the fourth byte, whatever the header says of it).
   */
  function craftBmp32({ data, width, height }: RgbaBitmap, layout: Bmp32Layout = {}): Buffer {
    const { headerSize = 108, compression = 3, alphaMask = 0xff000000, topDown = false } = layout;
    const masksAfter = headerSize === 40 ? (({ 3: 12, 6: 16 } as Record<number, number>)[compression] ?? 0) : 0;
    const pixelsAt = 14 + headerSize + masksAfter;
    const file = Buffer.alloc(pixelsAt + width * height * 4);
    file.write('BM', 0, 'latin1');
    file.writeUInt32LE(file.length, 2);
    file.writeUInt32LE(pixelsAt, 10);
    file.writeUInt32LE(headerSize, 14);
    file.writeInt32LE(width, 18);
    file.writeInt32LE(topDown ? -height : height, 22);
    file.writeUInt16LE(1, 26);
    file.writeUInt16LE(32, 28);
    file.writeUInt32LE(compression, 30);
    file.writeUInt32LE(width * height * 4, 34);
    if (headerSize > 40 || masksAfter > 0) [0xff0000, 0xff00, 0xff].forEach((mask, i) => file.writeUInt32LE(mask, 54 + 4 * i));
    if (headerSize >= 56 || compression === 6) file.writeUInt32LE(alphaMask, 66);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [r, g, b, a] = pixelAt({ data, width, height }, x, y);
        file.set([b!, g!, r!, a!], pixelsAt + ((topDown ? y : height - 1 - y) * width + x) * 4);
      }
    }
    return file;
  }

  /**
   * The pixels of a BMP result, read as a viewer reads it, after checking its header is the 32-bit
   * one with alpha: BITMAPV4HEADER, BI_BITFIELDS, masks R, G, B, A, LCS_sRGB, rows bottom-up.
   */
  function read32BitResult(file: Buffer): RgbaBitmap {
    expect({
      headerSize: file.readUInt32LE(14),
      bitsPerPixel: file.readUInt16LE(28),
      compression: file.readUInt32LE(30),
      masks: [54, 58, 62, 66].map((at) => file.readUInt32LE(at)),
      colourSpace: file.readUInt32LE(70),
    }).toEqual({ headerSize: 108, bitsPerPixel: 32, compression: 3, masks: [0xff0000, 0xff00, 0xff, 0xff000000], colourSpace: 0x73524742 });
    const [width, height, pixelsAt] = [file.readInt32LE(18), file.readInt32LE(22), file.readUInt32LE(10)];
    expect([pixelsAt, file.readUInt32LE(2), file.length]).toEqual([122, file.length, 122 + width * height * 4]);
    const data = Buffer.alloc(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const at = pixelsAt + ((height - 1 - y) * width + x) * 4;
        data.set([file[at + 2]!, file[at + 1]!, file[at]!, file[at + 3]!], (y * width + x) * 4);
      }
    }
    return { data, width, height };
  }

  const bitsPerPixel = (file: Buffer): number => file.readUInt16LE(28);

  it('when a 32-bit BMP with an alpha channel goes through swap-red-blue, then the result is a 32-bit BMP of the swapped colours and the same alpha', async () => {
    const original = translucent(9, 5);
    const source = craftBmp32(original);
    expect(codec.decode(source, 'image/bmp')).toEqual(original);

    const output = await transformImage(codec, source, 'image/bmp', 'swap-red-blue');

    expect(read32BitResult(output)).toEqual(swapRedBlue(original));
    expect(codec.decode(output, 'image/bmp')).toEqual(swapRedBlue(original));
  });

  it('when a 32-bit BMP with an alpha channel goes through rotate-90, then each alpha moves with its pixel', async () => {
    const original = translucent(7, 4);

    const output = await transformImage(codec, craftBmp32(original), 'image/bmp', 'rotate-90');

    expect(read32BitResult(output)).toEqual(turnedClockwise(original));
  });

  it('when an opaque 24-bit BMP goes through swap-red-blue, then the result is the 24-bit BMP written before alpha was kept', async () => {
    // 10 pixels a row: 30 bytes, padded to 32.
    const original = picture(10, 5);
    const source = Buffer.from(bmp().encode({ ...original, data: Buffer.from(original.data) }));
    expect(bitsPerPixel(source)).toBe(24);

    const output = await transformImage(codec, source, 'image/bmp', 'swap-red-blue');

    expect(bitsPerPixel(output)).toBe(24);
    // What @jimp/js-bmp, which wrote every BMP result before, writes of the swapped pixels.
    expect(output).toEqual(Buffer.from(bmp().encode(swapRedBlue(original))));
  });

  it('when a 32-bit BMP has an alpha mask but every alpha is 0, then it is opaque, as Chromium shows it, and the result is 24-bit', async () => {
    const colours = picture(6, 4, () => 0);
    const opaque = picture(6, 4);

    expect(codec.decode(craftBmp32(colours), 'image/bmp')).toEqual(opaque);
    const output = await transformImage(codec, craftBmp32(colours), 'image/bmp', 'swap-red-blue');

    expect(bitsPerPixel(output)).toBe(24);
    expect(codec.decode(output, 'image/bmp')).toEqual(swapRedBlue(opaque));
  });

  it.each<[string, Bmp32Layout]>([
    ['BI_ALPHABITFIELDS after a 40-byte header', { headerSize: 40, compression: 6 }],
    ['a BITMAPV3INFOHEADER (56 bytes)', { headerSize: 56 }],
    ['a BITMAPV5HEADER (124 bytes), top-down', { headerSize: 124, topDown: true }],
    ['a V4 header and BI_RGB, with an alpha mask', { compression: 0 }],
  ])('when a 32-bit BMP has its alpha mask in %s, then it is read with its alpha', (_name, layout) => {
    const original = translucent(5, 3);
    expect(codec.decode(craftBmp32(original, layout), 'image/bmp')).toEqual(original);
  });

  it.each<[string, Bmp32Layout]>([
    ['BI_RGB with a 40-byte header (the fourth byte is padding)', { headerSize: 40, compression: 0 }],
    ['BI_BITFIELDS with a 40-byte header (red, green and blue masks only)', { headerSize: 40, compression: 3 }],
    ['a V4 header whose alpha mask is 0', { alphaMask: 0 }],
  ])('when a 32-bit BMP has no alpha mask (%s), then it is opaque whatever its fourth bytes hold', (_name, layout) => {
    const original = translucent(5, 3);
    expect(codec.decode(craftBmp32(original, layout), 'image/bmp')).toEqual(picture(5, 3));
  });

  it('when a BMP has an alpha channel, then its plan counts the 32-bit encoding, a byte a pixel more than a 24-bit one', () => {
    const limits = { maxPixels: 1_000_000, maxMemoryBytes: 1024 * MB };
    const withAlpha = planDecode(craftBmp32(translucent(20, 10)), 'image/bmp', limits).memoryBytes;
    const withoutAlpha = planDecode(craftBmp32(translucent(20, 10), { alphaMask: 0 }), 'image/bmp', limits).memoryBytes;
    expect(withAlpha - withoutAlpha).toBe(20 * 10);
  });
});
