import { methods as flipPlugin } from '@jimp/plugin-flip';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/**
 * jimp flips whole pixels (alpha moves with its pixel) into a new buffer, then copies that buffer
 * once more: two bitmaps besides the source at its peak.
 */
export const JIMP_FLIP_BYTES_PER_PIXEL = 8;

/** Upside down: the top row becomes the bottom one. */
export const flip: PixelOperation = {
  apply: (bitmap) => withJimpImage(bitmap, (image) => flipPlugin.flip(image, { vertical: true })),
  workingBytesPerPixel: JIMP_FLIP_BYTES_PER_PIXEL,
};
