import bmp from '@jimp/js-bmp';
import gif from '@jimp/js-gif';
import jpeg from '@jimp/js-jpeg';
import png from '@jimp/js-png';
import tiff from '@jimp/js-tiff';
import { inspectImage, MAX_LISTED_FRAMES, readDeclaredDimensions, readJpegOrientation, type ExifOrientation, type ImageType } from '../src';
import { craftTiff, gifWithFrameSizes, jpegWithOrientation, tiffDeclaring } from '../src/testing';

// The helpers take plain Uint8Arrays (what a browser has); the encoders and Buffer-built files
// are copied into one, so a Buffer method used by mistake fails here.
const plain = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

describe('readDeclaredDimensions', () => {
  const bitmap = () => ({ data: Buffer.alloc(7 * 5 * 4, 0x80), width: 7, height: 5 });

  it.each<[ImageType, () => Buffer | Promise<Buffer>]>([
    ['image/png', () => png().encode(bitmap())],
    ['image/jpeg', () => jpeg().encode(bitmap(), { quality: 80 })],
    ['image/bmp', () => bmp().encode(bitmap())],
    ['image/gif', () => gif().encode(bitmap())],
    ['image/tiff', () => tiff().encode(bitmap())],
  ])('reads the size from the header of %s', async (type, make) => {
    expect(readDeclaredDimensions(type, plain(await make()))).toEqual({ width: 7, height: 5 });
  });

  it.each<[ImageType, () => Buffer | Promise<Buffer>]>([
    ['image/png', () => png().encode(bitmap())],
    ['image/jpeg', () => jpeg().encode(bitmap(), { quality: 80 })],
    ['image/bmp', () => bmp().encode(bitmap())],
    ['image/gif', () => gif().encode(bitmap())],
    ['image/tiff', () => tiff().encode(bitmap())],
  ])('when the %s is a view into a larger buffer, then it reads from the view', async (type, make) => {
    const file = await make();
    const larger = new Uint8Array(file.length + 20).fill(0xff);
    larger.set(file, 13);
    const view = larger.subarray(13, 13 + file.length);
    expect(readDeclaredDimensions(type, view)).toEqual({ width: 7, height: 5 });
    expect(inspectImage(type, view)).toMatchObject({ width: 7, height: 5, frameCount: 1 });
  });

  it.each<[ImageType, Buffer]>([
    ['image/png', Buffer.from('\x89PNG\r\n\x1a\n but no IHDR chunk here', 'latin1')],
    ['image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00])],
    ['image/bmp', Buffer.from('BM')],
    ['image/gif', Buffer.from('GIF89a')],
    ['image/tiff', Buffer.from('II*\0\x08\0\0\0\x05\0', 'latin1')],
  ])('when the %s header is cut short or damaged, then it says nothing', (type, bytes) => {
    expect(readDeclaredDimensions(type, plain(bytes))).toBeNull();
  });
});

describe('TIFF sizes', () => {
  it.each([
    ['little-endian, directory first', { littleEndian: true }],
    ['little-endian, directory after the pixels', { littleEndian: true, directoryLast: true }],
    ['big-endian, directory first', { littleEndian: false }],
    ['big-endian, directory after the pixels', { littleEndian: false, directoryLast: true }],
  ])('when a TIFF is %s, then its first directory gives the size', (_name, options) => {
    const file = plain(tiffDeclaring(300, 200, { ...options, stripBytes: 999 }));
    expect(readDeclaredDimensions('image/tiff', file)).toEqual({ width: 300, height: 200 });
    expect(inspectImage('image/tiff', file)).toMatchObject({
      width: 300,
      height: 200,
      frames: [{ width: 300, height: 200 }],
      frameCount: 1,
    });
  });

  it('when the size is given as SHORTs, then it is read as well', () => {
    const file = craftTiff(
      [
        { tag: 256, type: 'short', values: [640] },
        { tag: 257, type: 'short', values: [480] },
        { tag: 258, type: 'short', values: [16] },
      ],
      { littleEndian: false },
    );
    expect(readDeclaredDimensions('image/tiff', file)).toEqual({ width: 640, height: 480 });
    expect(inspectImage('image/tiff', file)).toMatchObject({ bitsPerSample: 16, decodedBytes: 640 * 480 * 8 });
  });

  it('when only the head of a TIFF is known and its directory lies past it, then the size is not known', () => {
    const file = tiffDeclaring(300, 200, { directoryLast: true, stripBytes: 200_000 });
    expect(readDeclaredDimensions('image/tiff', file)).toEqual({ width: 300, height: 200 });
    expect(readDeclaredDimensions('image/tiff', file.subarray(0, 128 * 1024))).toBeNull();
    expect(inspectImage('image/tiff', file.subarray(0, 128 * 1024))).toBeNull();
  });

  it('when a TIFF declares a huge page in a few bytes, then the size is seen', () => {
    const bomb = tiffDeclaring(100_000, 100_000, { stripBytes: 16 });
    expect(bomb.length).toBeLessThan(200);
    expect(inspectImage('image/tiff', bomb)).toMatchObject({ width: 100_000, height: 100_000, totalPixels: 1e10 });
  });

  it('when the first directory points outside the file or claims more entries than it holds, then the size is not known', () => {
    const outside = tiffDeclaring(300, 200);
    new DataView(outside.buffer).setUint32(4, 0xfffffff0, true);
    const tooMany = tiffDeclaring(300, 200);
    new DataView(tooMany.buffer).setUint16(8, 0xffff, true);
    expect(readDeclaredDimensions('image/tiff', outside)).toBeNull();
    expect(readDeclaredDimensions('image/tiff', tooMany)).toBeNull();
  });
});

describe('JPEG orientation', () => {
  const jpegOf = (width: number, height: number) =>
    jpeg().encode({ data: Buffer.alloc(width * height * 4, 0x80), width, height }, { quality: 80 });
  const orientations: ExifOrientation[] = [1, 2, 3, 4, 5, 6, 7, 8];

  it.each(orientations.flatMap((orientation) => [true, false].map((littleEndian) => [orientation, littleEndian] as const)))(
    'when a 7x5 JPEG has orientation %s (little-endian %s), then it is read, and 5-8 declare the size upright (5x7)',
    (orientation, littleEndian) => {
      const file = plain(jpegWithOrientation(jpegOf(7, 5), orientation, littleEndian));
      expect(readJpegOrientation(file)).toBe(orientation);
      expect(readDeclaredDimensions('image/jpeg', file)).toEqual(orientation >= 5 ? { width: 5, height: 7 } : { width: 7, height: 5 });
      // What a decoder allocates is the stored size.
      expect(inspectImage('image/jpeg', file)).toMatchObject({ width: 7, height: 5 });
    },
  );

  it('when a JPEG has no Exif segment, then it is as stored', () => {
    expect(readJpegOrientation(plain(jpegOf(7, 5)))).toBe(1);
  });

  it('when the Exif segment is damaged, then the orientation is as stored and nothing is read outside the segment', () => {
    const good = jpegWithOrientation(jpegOf(7, 5), 6, true);
    // SOI (2), APP1 marker and length (4), "Exif\0\0" (6): the TIFF structure starts at 12.
    const tiffAt = 12;
    const damage = (change: (view: DataView) => void): Uint8Array => {
      const copy = Uint8Array.from(good);
      change(new DataView(copy.buffer));
      return copy;
    };
    const cases = [
      damage((view) => view.setUint32(tiffAt + 4, 0x7ffffff0, true)), // directory outside the file
      damage((view) => view.setUint16(tiffAt + 8, 0xffff, true)), // more entries than the segment holds
      damage((view) => view.setUint16(tiffAt + 8 + 2 + 8, 9, true)), // no orientation 9
      damage((view) => view.setUint16(tiffAt + 8 + 2 + 2, 7, true)), // UNDEFINED, not SHORT
      damage((view) => view.setUint32(tiffAt + 4, 100, true)), // a directory past the segment's end, inside the file
    ];
    for (const file of cases) {
      expect(readJpegOrientation(plain(file))).toBe(1);
      expect(readDeclaredDimensions('image/jpeg', plain(file))).toEqual({ width: 7, height: 5 });
    }
  });
});

describe('inspectImage', () => {
  const bitmap = (width = 7, height = 5) => ({ data: Buffer.alloc(width * height * 4, 0x80), width, height });
  const real: Array<[ImageType, () => Buffer | Promise<Buffer>]> = [
    ['image/png', () => png().encode(bitmap())],
    ['image/jpeg', () => jpeg().encode(bitmap(), { quality: 80 })],
    ['image/bmp', () => bmp().encode(bitmap())],
    ['image/gif', () => gif().encode(bitmap())],
    ['image/tiff', () => tiff().encode(bitmap())],
  ];

  it.each(real)('when a %s is well formed, then it has one frame of its size', async (type, make) => {
    const inspection = inspectImage(type, plain(await make()));
    expect(inspection).toMatchObject({
      width: 7,
      height: 5,
      frames: [{ width: 7, height: 5 }],
      frameCount: 1,
      totalPixels: 35,
      largestFrame: { width: 7, height: 5 },
      widestFrame: { width: 7, height: 5 },
      tallestFrame: { width: 7, height: 5 },
      bitsPerSample: 8,
    });
    expect(inspection!.decodedBytes).toBeGreaterThanOrEqual(35 * 4);
  });

  it('when a GIF has a 65535x65535 frame in a 1x1 screen (35 bytes), then the frame is seen', () => {
    const bomb = Buffer.concat([
      Buffer.from('GIF89a', 'latin1'),
      Buffer.from([1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]),
      Buffer.from([0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0]),
      Buffer.from([2, 2, 0x4c, 0x01, 0, 0x3b]),
    ]);
    expect(bomb.length).toBe(35);

    const inspection = inspectImage('image/gif', plain(bomb));

    expect(readDeclaredDimensions('image/gif', plain(bomb))).toEqual({ width: 1, height: 1 });
    expect(inspection).toMatchObject({ width: 1, height: 1, frames: [{ width: 65535, height: 65535 }] });
    expect(inspection!.totalPixels).toBe(65535 * 65535);
    expect(inspection!.decodedBytes).toBe(4 + 65535 * 65535);
  });

  it('when a GIF has many frames between extensions, then every frame is counted and summed', () => {
    const frame = Buffer.from([
      ...[0x21, 0xf9, 4, 0, 10, 0, 0, 0], // graphic control extension
      ...[0x2c, 0, 0, 0, 0, 0xe8, 0x03, 0xe8, 0x03, 0x81], // 1000×1000 with a local palette of 4 colours
      ...Array<number>(12).fill(0),
      ...[2, 1, 0x2c, 0], // LZW
    ]);
    const application = Buffer.concat([Buffer.from([0x21, 0xff, 11]), Buffer.from('NETSCAPE2.0'), Buffer.from([3, 1, 0, 0, 0])]);
    const file = Buffer.concat([
      Buffer.from('GIF89a', 'latin1'),
      Buffer.from([0xe8, 0x03, 0xe8, 0x03, 0, 0, 0]), // 1000×1000, no global palette
      application,
      ...Array<Buffer>(30).fill(frame),
      Buffer.from([0x3b]),
    ]);

    const inspection = inspectImage('image/gif', plain(file));

    expect(inspection).toMatchObject({ width: 1000, height: 1000, frameCount: 30, totalPixels: 30_000_000 });
    expect(inspection!.frames).toHaveLength(30);
  });

  it('when an animated GIF has frames smaller than its screen, then each counts as the whole screen it is drawn on', () => {
    const file = gifWithFrameSizes({ width: 1000, height: 1000 }, [
      { width: 10, height: 10 },
      { width: 10, height: 10 },
      { width: 2000, height: 1 },
    ]);
    const inspection = inspectImage('image/gif', plain(file))!;
    expect(inspection.totalPixels).toBe(3 * 1_000_000);
    // The colour indices are the frames' own.
    expect(inspection.decodedBytes).toBe(1_000_000 * 4 + 100 + 100 + 2000);
  });

  it('when a JPEG has a second frame header after its scan, then both frames are seen, and none after its end', async () => {
    const file = jpeg().encode(bitmap(), { quality: 80 });
    const secondFrame = Buffer.from([0xff, 0xc0, 0, 17, 8, 0xea, 0x60, 0xea, 0x60, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    const end = file.length - 2;
    const crafted = Buffer.concat([file.subarray(0, end), secondFrame, file.subarray(end)]);
    const appended = Buffer.concat([file, secondFrame]);

    expect(inspectImage('image/jpeg', plain(crafted))).toMatchObject({
      width: 7,
      height: 5,
      largestFrame: { width: 60000, height: 60000 },
      frames: [
        { width: 7, height: 5 },
        { width: 60000, height: 60000 },
      ],
      totalPixels: 35 + 60000 * 60000,
    });
    // 4:2:0 at 60000×60000: 3750×3750 MCUs of four luma blocks and two chroma.
    expect(inspectImage('image/jpeg', plain(crafted))!.jpegBlocks).toBe(inspectImage('image/jpeg', file)!.jpegBlocks + 3750 * 3750 * 6);
    expect(inspectImage('image/jpeg', plain(appended))!.frames).toEqual([{ width: 7, height: 5 }]);
  });

  const pngHeader = (width: number, height: number, depth: number, colorType: number, interlace = 0): Buffer => {
    const file = Buffer.alloc(8 + 25);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(file);
    file.writeUInt32BE(13, 8);
    file.write('IHDR', 12, 'latin1');
    file.writeUInt32BE(width, 16);
    file.writeUInt32BE(height, 20);
    file[24] = depth;
    file[25] = colorType;
    file[28] = interlace;
    return file;
  };

  it('when a PNG has 16-bit samples, then it decodes at twice the bytes of 8-bit ones', () => {
    const eight = inspectImage('image/png', plain(pngHeader(16384, 3000, 8, 6)))!;
    const sixteen = inspectImage('image/png', plain(pngHeader(16384, 3000, 16, 6)))!;

    expect(sixteen.bitsPerSample).toBe(16);
    expect(sixteen.decodedBytes).toBe(16384 * 3000 * 8);
    expect(eight.decodedBytes).toBe(16384 * 3000 * 4);
    expect(sixteen.pngScanlineBytes).toBe(3000 * (1 + 16384 * 8));
  });

  it('when a PNG is interlaced, then its scanlines of every pass are counted', () => {
    // 8×8 grey at 8 bits: the passes are 1×1, 1×1, 2×1, 2×2, 4×2, 4×4, 8×4.
    const inspection = inspectImage('image/png', plain(pngHeader(8, 8, 8, 0, 1)))!;
    expect(inspection.pngInterlaced).toBe(true);
    expect(inspection.pngScanlineBytes).toBe(2 + 2 + 3 + 2 * 3 + 2 * 5 + 4 * 5 + 4 * 9);
  });

  it('when a PNG has a second IHDR declaring a larger size, then it counts', () => {
    const first = pngHeader(10, 10, 8, 6);
    const second = pngHeader(50_000, 50_000, 8, 6).subarray(8);
    const inspection = inspectImage('image/png', plain(Buffer.concat([first, second])));
    expect(inspection).toMatchObject({ width: 10, height: 10, largestFrame: { width: 50_000, height: 50_000 }, frameCount: 2 });
    expect(inspection!.decodedBytes).toBe(50_000 * 50_000 * 4);
  });

  it('when a BMP declares a colour table, then its entries are counted', async () => {
    const file = Buffer.from(bmp().encode(bitmap()));
    file.writeUInt32LE(4_000_000_000, 46);
    expect(inspectImage('image/bmp', plain(file))!.bmpPaletteEntries).toBe(4_000_000_000);
  });

  it('when a file has more frames than are listed, then the totals and the largest, widest and tallest count them all', () => {
    const frame = (width: number, height: number) =>
      Buffer.from([0x2c, 0, 0, 0, 0, width & 0xff, width >> 8, height & 0xff, height >> 8, 0, 2, 1, 0x2c, 0]);
    const file = Buffer.concat([
      Buffer.from('GIF89a', 'latin1'),
      Buffer.from([1, 0, 1, 0, 0, 0, 0]),
      ...Array<Buffer>(MAX_LISTED_FRAMES + 5).fill(frame(1, 1)),
      frame(40_000, 1),
      frame(2, 30_000),
      frame(300, 300),
    ]);
    const inspection = inspectImage('image/gif', plain(file))!;
    expect(inspection.frames).toHaveLength(MAX_LISTED_FRAMES);
    expect(inspection.frameCount).toBe(MAX_LISTED_FRAMES + 8);
    expect(inspection.totalPixels).toBe(MAX_LISTED_FRAMES + 5 + 40_000 + 60_000 + 90_000);
    expect(inspection).toMatchObject({
      largestFrame: { width: 300, height: 300 },
      widestFrame: { width: 40_000, height: 1 },
      tallestFrame: { width: 2, height: 30_000 },
    });
  });

  it.each(real)('when a %s is cut anywhere or has bytes changed, then it never throws', async (type, make) => {
    const file = plain(await make());
    let state = 7;
    const random = () => (state = (state * 1103515245 + 12345) >>> 0);
    for (let length = 0; length <= file.length; length++) {
      expect(() => inspectImage(type, file.subarray(0, length))).not.toThrow();
    }
    for (let round = 0; round < 500; round++) {
      const damaged = plain(file);
      for (let i = 0; i < 4; i++) damaged[random() % damaged.length] = random() & 0xff;
      expect(() => inspectImage(type, damaged)).not.toThrow();
    }
  });

  it.each<[ImageType, Buffer]>([
    ['image/png', Buffer.from('\x89PNG\r\n\x1a\n but no IHDR chunk here', 'latin1')],
    ['image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00])],
    ['image/bmp', Buffer.from('BM')],
    ['image/gif', Buffer.from('GIF89a')],
    ['image/tiff', Buffer.from('MM\0*\0\0\0\x08', 'latin1')],
  ])('when the %s has no frame to show, then it says nothing', (type, bytes) => {
    expect(inspectImage(type, plain(bytes))).toBeNull();
  });
});
