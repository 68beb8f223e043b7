import { OPERATIONS } from '@pixelmill/contracts';
import type { RgbaBitmap } from '../../src/domain/bitmap';
import { applyOperation, OPERATION_REGISTRY } from '../../src/domain/operations';

/** A 2x2 bitmap from RGBA quadruplets, row by row. */
const bitmapOf = (...pixels: Array<[number, number, number, number]>): RgbaBitmap => ({
  data: Buffer.from(pixels.flat()),
  width: 2,
  height: 2,
});

const pixelsOf = ({ data }: RgbaBitmap): number[][] =>
  Array.from({ length: data.length / 4 }, (_, i) => [...data.subarray(i * 4, i * 4 + 4)]);

describe('operations', () => {
  const sample = (): RgbaBitmap => bitmapOf([255, 0, 0, 255], [10, 20, 30, 0], [0, 128, 255, 128], [255, 255, 255, 7]);

  it('has a function for every operation of the contract', () => {
    expect(Object.keys(OPERATION_REGISTRY).sort()).toEqual([...OPERATIONS].sort());
    for (const op of OPERATIONS) expect(typeof OPERATION_REGISTRY[op]).toBe('function');
  });

  it('when swap-red-blue runs, then red and blue trade places and green and alpha stay', () => {
    const bitmap = sample();
    applyOperation('swap-red-blue', bitmap);
    expect(pixelsOf(bitmap)).toEqual([
      [0, 0, 255, 255],
      [30, 20, 10, 0],
      [255, 128, 0, 128],
      [255, 255, 255, 7],
    ]);
  });

  it('when swap-red-blue runs twice, then the image is back as it was', () => {
    const bitmap = sample();
    applyOperation('swap-red-blue', bitmap);
    applyOperation('swap-red-blue', bitmap);
    expect(bitmap.data).toEqual(sample().data);
  });

  it('when grayscale runs, then each pixel gets its BT.601 luma in all three channels and alpha stays', () => {
    const bitmap = sample();
    applyOperation('grayscale', bitmap);
    // (77 R + 150 G + 29 B + 128) >> 8
    expect(pixelsOf(bitmap)).toEqual([
      [77, 77, 77, 255],
      [18, 18, 18, 0],
      [104, 104, 104, 128],
      [255, 255, 255, 7],
    ]);
  });

  it('when invert runs, then each colour channel becomes 255 minus itself and alpha stays', () => {
    const bitmap = sample();
    applyOperation('invert', bitmap);
    expect(pixelsOf(bitmap)).toEqual([
      [0, 255, 255, 255],
      [245, 235, 225, 0],
      [255, 127, 0, 128],
      [0, 0, 0, 7],
    ]);
  });

  it('changes the pixels in place, in the same buffer', () => {
    const bitmap = sample();
    const buffer = bitmap.data;
    applyOperation('invert', bitmap);
    expect(bitmap.data).toBe(buffer);
    expect(buffer[0]).toBe(0);
  });
});
