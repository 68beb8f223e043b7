import type { RgbaBitmap } from '../../../src/domain/bitmap';

export type Rgba = [red: number, green: number, blue: number, alpha: number];

/** A bitmap of `width` × `height` from RGBA quadruplets, row by row. */
export function bitmapOf(width: number, height: number, pixels: Rgba[]): RgbaBitmap {
  if (pixels.length !== width * height) throw new Error(`${pixels.length} pixels for ${width}x${height}`);
  return { data: Buffer.from(pixels.flat()), width, height };
}

/** A bitmap's size and its pixels as RGBA quadruplets, row by row: what a test compares. */
export const pictureOf = ({ data, width, height }: RgbaBitmap): { width: number; height: number; pixels: Rgba[] } => ({
  width,
  height,
  pixels: Array.from({ length: data.length / 4 }, (_, i) => [...data.subarray(i * 4, i * 4 + 4)] as Rgba),
});

/**
 * Six pixels told apart by every channel, alpha included (from transparent to opaque), as
 *   A B C
 *   D E F
 */
export const A: Rgba = [255, 0, 0, 255];
export const B: Rgba = [0, 255, 0, 0];
export const C: Rgba = [0, 0, 255, 128];
export const D: Rgba = [10, 20, 30, 7];
export const E: Rgba = [40, 50, 60, 200];
export const F: Rgba = [70, 80, 90, 255];
export const threeByTwo = (): RgbaBitmap => bitmapOf(3, 2, [A, B, C, D, E, F]);

/** Four pixels of colours the colour operations treat differently, with four alphas. */
export const twoByTwo = (): RgbaBitmap =>
  bitmapOf(2, 2, [
    [255, 0, 0, 255],
    [10, 20, 30, 0],
    [0, 128, 255, 128],
    [255, 255, 255, 7],
  ]);
