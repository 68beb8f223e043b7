import bmp from '@jimp/js-bmp';
import jpeg from '@jimp/js-jpeg';
import { planDecode, type DecodeLimits } from '../../src/domain/decode-plan';
import { ImageCodec } from '../../src/domain/image-codec';
import { ImageDecodeError } from '../../src/domain/work-errors';
import { gifWithFrames, gifWithHugeFrame, jpegWithSecondFrame, pngChunk, rgbaPng } from '@pixelmill/contracts/testing';

const MB = 2 ** 20;
const LIMITS: DecodeLimits = { maxPixels: 50_000_000, maxMemoryBytes: 1024 * MB };

const bitmap = (width: number, height: number) => ({ data: Buffer.alloc(width * height * 4, 0x80), width, height });

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

describe('planDecode', () => {
  it('when a 35-byte GIF has a 65535x65535 frame in a 1x1 screen, then it is refused for that frame', () => {
    expect(refusal(() => planDecode(gifWithHugeFrame(), 'image/gif', LIMITS))).toBe(
      'image/gif with a frame of 65535x65535 pixels is larger than the limit of 50000000 pixels',
    );
  });

  it('when the frames of a GIF are each within the limit but not together, then it is refused for their total', () => {
    expect(refusal(() => planDecode(gifWithFrames(3, 5000, 5000), 'image/gif', LIMITS))).toBe(
      'image/gif with 3 frames of 75000000 pixels in all is larger than the limit of 50000000 pixels',
    );
    expect(planDecode(gifWithFrames(2, 5000, 5000), 'image/gif', LIMITS).memoryBytes).toBeGreaterThan(25_000_000 * 4);
  });

  it('when a JPEG has a second frame header of 60000x60000 after its scan, then it is refused for that frame', async () => {
    const crafted = jpegWithSecondFrame(jpeg().encode(bitmap(8, 8), { quality: 80 }), 60000, 60000);
    expect(refusal(() => planDecode(crafted, 'image/jpeg', LIMITS))).toBe(
      'image/jpeg with a frame of 60000x60000 pixels is larger than the limit of 50000000 pixels',
    );
  });

  it('when a JPEG has a second frame within the limits, then it is refused as unsupported before decoding', async () => {
    const crafted = jpegWithSecondFrame(jpeg().encode(bitmap(8, 8), { quality: 80 }), 2000, 2000);
    expect(refusal(() => planDecode(crafted, 'image/jpeg', LIMITS))).toMatch(
      /^could not decode image\/jpeg: the file uses a variant of the format that is not supported \(2 frames/,
    );
  });

  it('when a 16-bit PNG needs more memory than the worker has, then it is refused, and its 8-bit twin is not', () => {
    const limits = { ...LIMITS, maxMemoryBytes: 64 * MB };
    const sixteen = rgbaPng(2000, 2000, 16);
    expect(sixteen.length).toBeLessThan(200_000);

    expect(refusal(() => planDecode(sixteen, 'image/png', limits))).toMatch(
      /^image\/png of 2000x2000 pixels needs (\d+) MB to transform, the worker has 64 MB \(WORKER_MEMORY_MB\)$/,
    );
    const eight = planDecode(rgbaPng(1200, 1200, 8), 'image/png', limits);
    expect(eight.memoryBytes).toBeLessThanOrEqual(64 * MB);
  });

  it('when a BMP claims a colour table of billions of entries, then it is refused before they are read', async () => {
    const file = Buffer.from(bmp().encode(bitmap(4, 4)));
    file.writeUInt32LE(4_000_000_000, 46);
    expect(refusal(() => planDecode(file, 'image/bmp', LIMITS))).toMatch(/colour table claims 4000000000 entries/);
  });

  it('when the operation makes a second bitmap (a rotation), then the estimate counts it; an operation in place adds nothing', () => {
    const png = rgbaPng(300, 200, 8);
    const codecOnly = planDecode(png, 'image/png', LIMITS).memoryBytes;
    expect(planDecode(png, 'image/png', LIMITS, 'swap-red-blue').memoryBytes).toBe(codecOnly);
    expect(planDecode(png, 'image/png', LIMITS, 'rotate-90').memoryBytes).toBe(codecOnly + 300 * 200 * 4);
    expect(planDecode(png, 'image/png', LIMITS, 'blur').memoryBytes).toBeGreaterThan(codecOnly + 300 * 200 * 32);
  });

  it('when an image fits alone but not with its operation, then it is refused naming the operation', () => {
    const png = rgbaPng(2000, 2000, 8);
    const limits = { ...LIMITS, maxMemoryBytes: planDecode(png, 'image/png', LIMITS).memoryBytes + 2000 * 2000 };
    expect(planDecode(png, 'image/png', limits, 'invert').memoryBytes).toBeLessThanOrEqual(limits.maxMemoryBytes);
    expect(refusal(() => planDecode(png, 'image/png', limits, 'rotate-270'))).toMatch(
      /^image\/png of 2000x2000 pixels needs \d+ MB to transform with rotate-270, the worker has \d+ MB \(WORKER_MEMORY_MB\)$/,
    );
  });

  it('estimates at least the decoded RGBA and the source for every type', async () => {
    const png = rgbaPng(300, 200, 8);
    const plan = planDecode(png, 'image/png', LIMITS);
    expect(plan.memoryBytes).toBeGreaterThan(300 * 200 * 4 + png.length);
    const jpg = jpeg().encode(bitmap(300, 200), { quality: 80 });
    expect(planDecode(jpg, 'image/jpeg', LIMITS).memoryBytes).toBeGreaterThan(300 * 200 * 4 + jpg.length);
  });
});

describe('ImageCodec on crafted images', () => {
  const codec = new ImageCodec({ pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 50_000_000, maxMemoryBytes: 64 * MB });

  it.each<[string, () => Uint8Array | Promise<Uint8Array>, string, RegExp]>([
    [
      'a GIF with a 65535x65535 frame in a 1x1 screen',
      gifWithHugeFrame,
      'image/gif',
      /frame of 65535x65535 pixels is larger than the limit/,
    ],
    ['a GIF of 3 frames of 5000x5000', () => gifWithFrames(3, 5000, 5000), 'image/gif', /3 frames of 75000000 pixels in all/],
    [
      'a JPEG with a second frame of 60000x60000',
      () => jpegWithSecondFrame(jpeg().encode(bitmap(8, 8), { quality: 80 }), 60000, 60000),
      'image/jpeg',
      /frame of 60000x60000 pixels is larger than the limit/,
    ],
    ['a 16-bit PNG past the memory', () => rgbaPng(2000, 2000, 16), 'image/png', /needs \d+ MB to transform, the worker has 64 MB/],
  ])('when it decodes %s, then it refuses at once with the reason', async (_name, make, type, reason) => {
    const bytes = Buffer.from(await make());
    expect(refusal(() => codec.decode(bytes, type))).toMatch(reason);
  });

  it('when an interlaced PNG inflates past the size its header declares, then it is refused before pngjs inflates it', () => {
    // A 4×4 grey interlaced header, and a zlib stream of a megabyte of zeros.
    const { deflateSync } = jest.requireActual<typeof import('node:zlib')>('node:zlib');
    const ihdr = Buffer.from([0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 0, 1]);
    const bomb = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', deflateSync(Buffer.alloc(2 ** 20))),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
    expect(refusal(() => codec.decode(bomb, 'image/png'))).toMatch(/inflates past the \d+ bytes its header declares/);
  });
});
