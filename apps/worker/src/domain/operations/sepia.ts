import { methods as color } from '@jimp/plugin-color';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/**
 * jimp's sepia, in place; alpha untouched. jimp computes green from the red it has just toned, and
 * blue from both, so its tones are lighter and yellower than the textbook matrix's.
 */
export const sepia: PixelOperation = {
  apply: (bitmap) => withJimpImage(bitmap, (image) => color.sepia(image)),
  workingBytesPerPixel: 0,
};
