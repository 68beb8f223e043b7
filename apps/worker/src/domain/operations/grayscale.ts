import type { PixelOperation } from './pixel-operation';

/**
 * Luma with the ITU-R BT.601 weights in integers (77 + 150 + 29 = 256), rounded. A loop of our own
 * rather than jimp's `greyscale`, which took three times the CPU on a 1920×1080 image
 * (scripts/measure-operations.js) and gives other greys (BT.709 weights, truncated).
 */
export const grayscale: PixelOperation = {
  apply: (bitmap) => {
    const { data } = bitmap;
    for (let i = 0; i < data.length; i += 4) {
      const luma = (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
      data[i] = luma;
      data[i + 1] = luma;
      data[i + 2] = luma;
    }
    return bitmap;
  },
  workingBytesPerPixel: 0,
};
