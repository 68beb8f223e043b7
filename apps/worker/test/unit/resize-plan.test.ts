import { rgbaPng } from '@pixelmill/contracts/testing';
import { planDecode, type DecodeLimits } from '../../src/domain/decode-plan';
import { ImageDecodeError } from '../../src/domain/work-errors';

const MB = 2 ** 20;
const LIMITS: DecodeLimits = { maxPixels: 50_000_000, maxMemoryBytes: 1024 * MB };

/** The error `act` throws, which must be an ImageDecodeError (the task fails with its message). */
function refusal(act: () => unknown): string {
  try {
    act();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageDecodeError);
    return (err as Error).message;
  }
  throw new Error('it was not refused');
}

describe("planDecode of a resize: the result's size counts before anything is decoded", () => {
  const png = rgbaPng(100, 100, 8);
  const codecOnly = planDecode(png, 'image/png', LIMITS).memoryBytes;

  it('when a small image is to be enlarged a lot, then the estimate counts the large result; a reduction adds little', () => {
    const enlarged = planDecode(png, 'image/png', LIMITS, 'resize', { width: 4000, height: 3000 }).memoryBytes;
    expect(enlarged - codecOnly).toBeGreaterThan(4000 * 3000 * 4 * 2);
    const reduced = planDecode(png, 'image/png', LIMITS, 'resize', { width: 10 }).memoryBytes;
    expect(reduced - codecOnly).toBeLessThan(100 * 100 * 4);
  });

  it('when the result would need more memory than the worker has, then it is refused naming resize, however small the source', () => {
    const limits = { ...LIMITS, maxMemoryBytes: 64 * MB };
    expect(planDecode(png, 'image/png', limits, 'resize', { width: 200 }).memoryBytes).toBeLessThanOrEqual(limits.maxMemoryBytes);
    expect(refusal(() => planDecode(png, 'image/png', limits, 'resize', { width: 8000, height: 6000 }))).toMatch(
      /^image\/png of 100x100 pixels needs \d+ MB to transform with resize, the worker has 64 MB \(WORKER_MEMORY_MB\)$/,
    );
  });

  it("when the result has more pixels than the worker's limit, then it is refused though the source has few", () => {
    const limits = { ...LIMITS, maxPixels: 1_000_000 };
    expect(refusal(() => planDecode(png, 'image/png', limits, 'resize', { width: 2000, height: 1000 }))).toBe(
      'resize makes 2000x1000 pixels of this image/png of 100x100, more than the limit of 1000000 pixels',
    );
  });

  it('when a side kept from the aspect ratio passes the bound, then it is refused', () => {
    const tall = rgbaPng(10, 1000, 8);
    expect(refusal(() => planDecode(tall, 'image/png', LIMITS, 'resize', { width: 100 }))).toBe(
      'resize to width 100 of an image of 10×1000 pixels makes 100×10000, more than 8192 pixels a side',
    );
  });

  it('when a rotation turns a non-square image, then its estimate is as before: a second bitmap', () => {
    const wide = rgbaPng(300, 200, 8);
    const alone = planDecode(wide, 'image/png', LIMITS).memoryBytes;
    expect(planDecode(wide, 'image/png', LIMITS, 'rotate-90').memoryBytes).toBe(alone + 300 * 200 * 4);
  });
});
