import type { Dimensions, OperationParams } from '@pixelmill/contracts';
import type { RgbaBitmap } from '../bitmap';

/**
 * One operation on decoded pixels. `apply` returns the bitmap to encode: the one it was given,
 * changed in place, or a new one (a quarter turn swaps width and height, resize makes another
 * size); the caller keeps only what it returns. Every pixel keeps its alpha: an operation that
 * changes colours leaves every fourth byte as it was, one that moves pixels moves their alpha with
 * them, resize resamples it with the colours. `params` are the task's (resize: width, height),
 * checked against the operation by the contract; the operations without any take none.
 */
export interface PixelOperation {
  apply(bitmap: RgbaBitmap, params?: OperationParams): RgbaBitmap;
  /**
   * The most memory it holds besides the decoded pixels, in bytes per pixel: 0 in place, 4 for a
   * second bitmap, more for copies or working arrays. A task's memory estimate counts it.
   */
  workingBytesPerPixel: number;
  /**
   * For an operation whose memory is not a multiple of the source's pixels (resize: of its
   * result's size), the most it holds besides the decoded pixels of `source`; counted instead of
   * `workingBytesPerPixel`.
   */
  workingBytes?: (source: Dimensions, params: OperationParams) => number;
}
