import type { RgbaBitmap } from '../bitmap';

/**
 * One operation on decoded pixels. `apply` returns the bitmap to encode: the one it was given,
 * changed in place, or a new one (a quarter turn swaps width and height); the caller keeps only
 * what it returns. Every pixel keeps its alpha: an operation that changes colours leaves every
 * fourth byte as it was, one that moves pixels moves their alpha with them.
 */
export interface PixelOperation {
  apply(bitmap: RgbaBitmap): RgbaBitmap;
  /**
   * The most memory it holds besides the decoded pixels, in bytes per pixel: 0 in place, 4 for a
   * second bitmap, more for copies or working arrays. A task's memory estimate counts it.
   */
  workingBytesPerPixel: number;
}
