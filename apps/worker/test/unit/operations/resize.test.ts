import { PermanentWorkError } from '../../../src/domain/work-errors';
import { resize, resizeWorkingBytes } from '../../../src/domain/operations/resize';
import { A, bitmapOf, pictureOf, threeByTwo, type Rgba } from './bitmaps';

/** A bitmap of one colour. */
const flat = (width: number, height: number, colour: Rgba) =>
  bitmapOf(
    width,
    height,
    Array.from({ length: width * height }, () => colour),
  );

describe('resize', () => {
  it('when only a width is given, then the height keeps the aspect ratio', () => {
    expect(resize.apply(flat(40, 30, A), { width: 20 })).toMatchObject({ width: 20, height: 15 });
    expect(resize.apply(flat(40, 30, A), { width: 100 })).toMatchObject({ width: 100, height: 75 });
  });

  it('when only a height is given, then the width keeps the aspect ratio, rounded', () => {
    expect(resize.apply(flat(40, 30, A), { height: 10 })).toMatchObject({ width: 13, height: 10 });
    expect(resize.apply(flat(3, 1000, A), { height: 10 })).toMatchObject({ width: 1, height: 10 });
  });

  it('when both are given, then the result has them, the aspect ratio not kept', () => {
    const result = resize.apply(flat(40, 30, A), { width: 7, height: 90 });
    expect(result).toMatchObject({ width: 7, height: 90 });
    expect(result.data.length).toBe(7 * 90 * 4);
  });

  it('when an image of one colour is enlarged or reduced, then every pixel keeps that colour and its alpha', () => {
    const colour: Rgba = [200, 100, 50, 255];
    for (const params of [{ width: 64 }, { width: 5 }, { width: 33, height: 7 }]) {
      const { pixels } = pictureOf(resize.apply(flat(16, 12, colour), params));
      expect(new Set(pixels.map((pixel) => pixel.join(',')))).toEqual(new Set([colour.join(',')]));
    }
  });

  it('when an image with transparency is reduced, then alpha is averaged with the colours', () => {
    // Left column opaque red, right column transparent: one pixel wide, half transparent.
    const halves = bitmapOf(2, 1, [
      [255, 0, 0, 255],
      [0, 0, 0, 0],
    ]);
    const [pixel] = pictureOf(resize.apply(halves, { width: 1 })).pixels;
    expect(pixel![3]).toBeGreaterThan(100);
    expect(pixel![3]).toBeLessThan(155);
    // The transparent pixel's black does not darken the red.
    expect(pixel![0]).toBeGreaterThan(200);
  });

  it('when the size asked for is the size it has, then the bitmap is returned as it is', () => {
    const bitmap = threeByTwo();
    expect(resize.apply(bitmap, { width: 3 })).toBe(bitmap);
  });

  it('when it comes without a side, or a kept side past the bound, then it fails for good, saying why', () => {
    expect(() => resize.apply(flat(4, 4, A), {})).toThrow(new PermanentWorkError('op=resize needs width, height or both (in pixels)'));
    expect(() => resize.apply(flat(1, 10, A), { width: 1000 })).toThrow(PermanentWorkError);
    expect(() => resize.apply(flat(1, 10, A), { width: 1000 })).toThrow(/makes 1000×10000, more than 8192 pixels a side/);
  });

  it("counts its memory at the result's size: its passes and the new bitmap, and the encoding of more pixels than the source's", () => {
    const source = { width: 100, height: 100 };
    // Across: 16 bytes × 1000 × 100; down: 4 × 1000²; the new bitmap: 4 × 1000²; encoding 8 × (1000² − 100²).
    expect(resizeWorkingBytes(source, { width: 1000, height: 1000 })).toBe(
      16 * 1000 * 100 + 8 * 1000 * 1000 + 8 * (1000 * 1000 - 100 * 100),
    );
    // Only down (the width stays): 4 × 100 × 50, and the new bitmap.
    expect(resizeWorkingBytes(source, { width: 100, height: 50 })).toBe(4 * 100 * 50 + 4 * 100 * 50);
    // A wide result from a tall source: the first pass is the result's width by the source's height.
    expect(resizeWorkingBytes({ width: 10, height: 5000 }, { width: 8000, height: 10 })).toBeGreaterThan(16 * 8000 * 5000);
    expect(resizeWorkingBytes(source, { width: 100 })).toBe(0);
    expect(resize.workingBytes).toBe(resizeWorkingBytes);
  });
});
