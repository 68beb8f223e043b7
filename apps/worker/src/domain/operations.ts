import type { Operation } from '@pixelmill/contracts';
import type { RgbaBitmap } from './bitmap';

/**
 * A transformation of decoded pixels, done in place on `bitmap.data`. It may change red, green
 * and blue; alpha (every fourth byte) is never touched, so transparency survives every operation.
 */
export type PixelOperation = (bitmap: RgbaBitmap) => void;

// The loops below index the buffer directly: per-pixel callbacks would allocate on images of
// tens of megapixels. `i` always points at a pixel's red byte.

export const swapRedBlue: PixelOperation = ({ data }) => {
  for (let i = 0; i < data.length; i += 4) {
    const red = data[i]!;
    data[i] = data[i + 2]!;
    data[i + 2] = red;
  }
};

/** Luma with the ITU-R BT.601 weights in integers (77 + 150 + 29 = 256), rounded. */
export const grayscale: PixelOperation = ({ data }) => {
  for (let i = 0; i < data.length; i += 4) {
    const luma = (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
    data[i] = luma;
    data[i + 1] = luma;
    data[i + 2] = luma;
  }
};

export const invert: PixelOperation = ({ data }) => {
  for (let i = 0; i < data.length; i += 4) {
    data[i] = 255 - data[i]!;
    data[i + 1] = 255 - data[i + 1]!;
    data[i + 2] = 255 - data[i + 2]!;
  }
};

/**
 * Every operation of the contract's enum, by name. Adding one: write its function above and
 * name it here; the `Record` makes the compiler refuse a name of the enum without a function.
 */
export const OPERATION_REGISTRY: Readonly<Record<Operation, PixelOperation>> = Object.freeze({
  'swap-red-blue': swapRedBlue,
  grayscale,
  invert,
});

export function applyOperation(op: Operation, bitmap: RgbaBitmap): void {
  OPERATION_REGISTRY[op](bitmap);
}
