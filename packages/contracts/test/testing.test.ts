import { crc32 as nodeCrc32, inflateSync } from 'node:zlib';
import png from '@jimp/js-png';
import { detectImageType, inspectImage, readDeclaredDimensions } from '../src';
import {
  crc32,
  gifWithFrames,
  gifWithHugeFrame,
  jpegDeclaring,
  jpegWithSecondFrame,
  pngChunk,
  rgbaPng,
  zlibCompress,
} from '../src/testing';

describe('the crafted images of @pixelmill/contracts/testing', () => {
  it('when an image is built, then it is a plain Uint8Array, not a Node Buffer', () => {
    for (const bytes of [gifWithHugeFrame(), gifWithFrames(2, 3, 4), rgbaPng(3, 2, 8), pngChunk('IEND', new Uint8Array(0))]) {
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(bytes)).toBe(false);
    }
  });

  it.each([8, 16] as const)('when a %i-bit RGBA PNG is built, then a decoder reads it whole, grey at its size', (depth) => {
    const file = rgbaPng(37, 11, depth);

    const decoded = png().decode(Buffer.from(file));

    expect(detectImageType(file)).toBe('image/png');
    expect(readDeclaredDimensions('image/png', file)).toEqual({ width: 37, height: 11 });
    expect(decoded).toMatchObject({ width: 37, height: 11 });
    expect(new Set(decoded.data)).toEqual(new Set([0x80]));
  });

  it('when a large flat PNG is built, then it is a small file', () => {
    const file = rgbaPng(2000, 2000, 16);
    expect(inspectImage('image/png', file)).toMatchObject({ width: 2000, height: 2000, bitsPerSample: 16 });
    // 32 MB of scanlines in about a thousandth of it, as zlib would.
    expect(file.length).toBeLessThan(40_000);
  });

  it('when a JPEG gets a second frame or another declared size, then the inspection sees it', () => {
    const jpeg = Uint8Array.of(
      ...[0xff, 0xd8],
      ...[0xff, 0xc0, 0, 17, 8, 0, 5, 0, 7, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1],
      ...[0xff, 0xd9],
    );

    expect(inspectImage('image/jpeg', jpegWithSecondFrame(jpeg, 900, 800))!.frames).toEqual([
      { width: 7, height: 5 },
      { width: 900, height: 800 },
    ]);
    expect(readDeclaredDimensions('image/jpeg', jpegDeclaring(jpeg, 4000, 3000))).toEqual({ width: 4000, height: 3000 });
    expect(readDeclaredDimensions('image/jpeg', jpeg)).toEqual({ width: 7, height: 5 });
  });
});

describe('zlibCompress', () => {
  let state = 11;
  const random = () => (state = (state * 1103515245 + 12345) >>> 0) >>> 24;

  it.each<[string, () => Uint8Array]>([
    ['nothing', () => new Uint8Array(0)],
    ['one byte', () => Uint8Array.of(7)],
    ['random bytes', () => Uint8Array.from({ length: 70_000 }, random)],
    ['runs of every length', () => Uint8Array.from({ length: 100_000 }, (_, i) => Math.floor(Math.sqrt(i)) & 0xff)],
    ['one long run', () => new Uint8Array(1_000_003).fill(0x80)],
    ['every byte value', () => Uint8Array.from({ length: 256 * 3 }, (_, i) => i & 0xff)],
  ])('when %s is compressed, then zlib inflates it back', (_name, make) => {
    const data = make();
    const inflated = inflateSync(zlibCompress(data));
    expect(inflated.length).toBe(data.length);
    expect(Buffer.compare(inflated, data)).toBe(0); // toEqual walks a megabyte for seconds
  });

  it('when data is compressed, then its CRC-32 is the one zlib computes', () => {
    const data = Uint8Array.from({ length: 5_000 }, random);
    expect(crc32(data)).toBe(nodeCrc32(data));
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});
