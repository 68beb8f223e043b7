import { readDeclaredDimensions, type ImageType } from '@pixelmill/contracts';
import { jpegDeclaring, jpegWithOrientation, tiffDeclaring } from '@pixelmill/contracts/testing';
import { maxGifFrames, maxResultBytes, resultBytesBound, resultProblem } from '../../src/domain/result-check';

const stored = (contentType: ImageType, width: number, height: number, size: number) => ({ contentType, width, height, size });
/** A task of an operation that keeps the size. */
const kept = { op: 'invert', params: null } as const;

describe('the check of a stored result', () => {
  it('when a result is a still image, then its bytes are bounded by 4 a pixel and the container', () => {
    expect(resultBytesBound({ width: 100, height: 100 }, { contentType: 'image/png', sourceBytes: 1_000_000 })).toBe(
      maxResultBytes({ width: 100, height: 100 }),
    );
    expect(
      resultProblem(stored('image/png', 100, 100, 100_000), { ...kept, contentType: 'image/png', width: 100, height: 100 }),
    ).toBeUndefined();
    expect(resultProblem(stored('image/png', 100, 100, 200_000), { ...kept, contentType: 'image/png', width: 100, height: 100 })).toMatch(
      /^the stored result has 200000 bytes, more than \d+ for its pixels$/,
    );
  });

  it('when a GIF result may be animated, then its bytes are bounded by the frames its source can have', () => {
    // Four 300×300 frames of 12-bit codes: more than one picture's bytes allow.
    const fourFrames = stored('image/gif', 300, 300, 4 * 300 * 300 * 1.5 + 3000);
    const gif = (sourceBytes: number) => ({ ...kept, contentType: 'image/gif' as const, width: 300, height: 300, sourceBytes });
    expect(fourFrames.size).toBeGreaterThan(maxResultBytes({ width: 300, height: 300 }));

    // A source of 1 kB holds at most 83 frames; one of 24 bytes at most 2 (a frame takes 12 at least).
    expect(resultProblem(fourFrames, gif(1000))).toBeUndefined();
    expect(resultProblem(fourFrames, gif(24))).toMatch(/more than \d+ for its pixels/);
    // A PNG of that size is refused: only a GIF holds frames.
    expect(resultProblem({ ...fourFrames, contentType: 'image/png' }, { ...gif(1000), contentType: 'image/png' })).toMatch(
      /for its pixels/,
    );
  });

  it('when the frames of a GIF are bounded, then by MAX_IMAGE_PIXELS over the screen, and by the source bytes when known', () => {
    const screen = { width: 1000, height: 1000 };
    expect(maxGifFrames(screen, 10 * 2 ** 20, 50_000_000)).toBe(50);
    expect(maxGifFrames(screen, 120, 50_000_000)).toBe(10);
    expect(maxGifFrames(screen, 0, 50_000_000)).toBe(50);
    expect(maxGifFrames({ width: 10_000, height: 10_000 }, 10 * 2 ** 20, 50_000_000)).toBe(1);
    // All frames together stay within MAX_IMAGE_PIXELS: about 1.5 bytes a pixel, not 4.
    expect(resultBytesBound(screen, { contentType: 'image/gif', sourceBytes: 0 }, 50_000_000)).toBeLessThan(50_000_000 * 1.6);
    expect(resultBytesBound(screen, { contentType: 'image/gif', sourceBytes: 0 }, 1_000_000)).toBe(maxResultBytes(screen));
  });

  it('when a result is a TIFF, then its uncompressed RGBA and directory fit the bound', () => {
    const size = 8 + 200 + 300 * 200 * 4;
    expect(readDeclaredDimensions('image/tiff', tiffDeclaring(300, 200))).toEqual({ width: 300, height: 200 });
    expect(
      resultProblem(stored('image/tiff', 300, 200, size), { ...kept, contentType: 'image/tiff', width: 300, height: 200 }),
    ).toBeUndefined();
  });

  it('when a JPEG source is stored turned (EXIF orientation 6), then it is compared upright with its upright result', () => {
    const jpegHead = jpegDeclaring(
      Uint8Array.of(0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0, 0, 0, 0, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1),
      400,
      300,
    );
    const source = readDeclaredDimensions('image/jpeg', jpegWithOrientation(jpegHead, 6))!;
    expect(source).toEqual({ width: 300, height: 400 });
    expect(resultProblem(stored('image/jpeg', 300, 400, 50_000), { ...kept, contentType: 'image/jpeg', ...source })).toBeUndefined();
    expect(resultProblem(stored('image/jpeg', 400, 300, 50_000), { ...kept, contentType: 'image/jpeg', ...source })).toBe(
      'the stored result is 400×300 pixels, not the 300×400 that invert makes of the 300×400 source',
    );
  });
});
