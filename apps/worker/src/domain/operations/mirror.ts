import { methods as flipPlugin } from '@jimp/plugin-flip';
import { JIMP_FLIP_BYTES_PER_PIXEL } from './flip';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/** Left and right trade places. */
export const mirror: PixelOperation = {
  apply: (bitmap) => withJimpImage(bitmap, (image) => flipPlugin.flip(image, { horizontal: true })),
  workingBytesPerPixel: JIMP_FLIP_BYTES_PER_PIXEL,
};
