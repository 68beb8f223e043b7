import { methods as resizePlugin } from '@jimp/plugin-resize';
import { operationParamsProblem, resultDimensions, resultSizeProblem, type Dimensions, type OperationParams } from '@pixelmill/contracts';
import { PermanentWorkError } from '../work-errors';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/**
 * What jimp's resizer (the default one, without a `mode`) holds: a first pass across each row into
 * a Float32Array of the result's width by the source's height, 4 channels (16 bytes a pixel of it),
 * then a pass down each column into a Uint8Array of the result (4 bytes a pixel), which it copies
 * once more into the new bitmap. A pass whose side does not change is skipped.
 */
const WIDTH_PASS_BYTES_PER_PIXEL = 16;
const HEIGHT_PASS_BYTES_PER_PIXEL = 4;
const RESULT_BYTES_PER_PIXEL = 4;
/**
 * The decode plan counts encoding at the source's size; a larger result costs its encoder more,
 * up to this much a pixel (PNG's filtered copy of the RGBA and its deflated bytes, the most of
 * the encoders).
 */
const ENCODE_BYTES_PER_PIXEL = 8;

/** The most memory resizing an image of `source`'s size holds besides its decoded pixels, encoding included. */
export function resizeWorkingBytes(source: Dimensions, params: OperationParams): number {
  const result = resultDimensions('resize', params, source);
  if (result.width === source.width && result.height === source.height) return 0;
  const resultPixels = result.width * result.height;
  const widthPass = result.width === source.width ? 0 : WIDTH_PASS_BYTES_PER_PIXEL * result.width * source.height;
  const heightPass = result.height === source.height ? 0 : HEIGHT_PASS_BYTES_PER_PIXEL * resultPixels;
  const encoding = ENCODE_BYTES_PER_PIXEL * Math.max(0, resultPixels - source.width * source.height);
  return widthPass + heightPass + RESULT_BYTES_PER_PIXEL * resultPixels + encoding;
}

/**
 * To the width and/or height asked for; a side not given keeps the aspect ratio (resultDimensions:
 * rounded, at least 1). jimp's default resampling, in two passes (across, then down): linear
 * between the two nearest pixels when a side grows, the average of the pixels each new one covers
 * when it shrinks (no aliasing on a strong reduction, as plain bilinear would have). Alpha is
 * resampled with the colours, which are weighted by it, so transparent pixels do not bleed their
 * colour into their neighbours.
 */
export const resize: PixelOperation = {
  apply: (bitmap, params = {}) => {
    // The contract lets neither through; a task that came another way fails with the reason.
    const problem = operationParamsProblem('resize', params) ?? resultSizeProblem('resize', params, bitmap);
    if (problem !== undefined) throw new PermanentWorkError(problem);
    const { width, height } = resultDimensions('resize', params, bitmap);
    if (width === bitmap.width && height === bitmap.height) return bitmap;
    return withJimpImage(bitmap, (image) => resizePlugin.resize(image, { w: width, h: height }));
  },
  workingBytesPerPixel: 0,
  workingBytes: resizeWorkingBytes,
};
