import type { Dimensions, Operation, OperationParams } from '@pixelmill/contracts';
import type { RgbaBitmap } from './bitmap';
import { blur } from './operations/blur';
import { flip } from './operations/flip';
import { grayscale } from './operations/grayscale';
import { invert } from './operations/invert';
import { mirror } from './operations/mirror';
import type { PixelOperation } from './operations/pixel-operation';
import { resize } from './operations/resize';
import { rotate180 } from './operations/rotate-180';
import { rotate270 } from './operations/rotate-270';
import { rotate90 } from './operations/rotate-90';
import { sepia } from './operations/sepia';
import { swapRedBlue } from './operations/swap-red-blue';

export type { PixelOperation } from './operations/pixel-operation';

/**
 * Every operation of the contract's enum, by name. Adding one: write its module in operations/
 * and name it here; the `Record` makes the compiler refuse a name of the enum without one.
 */
export const OPERATION_REGISTRY: Readonly<Record<Operation, PixelOperation>> = Object.freeze({
  'swap-red-blue': swapRedBlue,
  grayscale,
  invert,
  sepia,
  flip,
  mirror,
  'rotate-90': rotate90,
  'rotate-180': rotate180,
  'rotate-270': rotate270,
  blur,
  resize,
});

/**
 * Applies `op` with the task's `params` (resize: width, height; the other operations take none);
 * returns the bitmap to go on with, which may be a new one (see PixelOperation).
 */
export function applyOperation(op: Operation, bitmap: RgbaBitmap, params: OperationParams = {}): RgbaBitmap {
  return OPERATION_REGISTRY[op].apply(bitmap, params);
}

/** What `op` holds besides the decoded pixels of an image of `source`'s size, at its peak. */
export function operationWorkingBytes(op: Operation, source: Dimensions, params: OperationParams = {}): number {
  const operation = OPERATION_REGISTRY[op];
  return operation.workingBytes?.(source, params) ?? source.width * source.height * operation.workingBytesPerPixel;
}
