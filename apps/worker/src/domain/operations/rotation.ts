import { methods as rotatePlugin } from '@jimp/plugin-rotate';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/**
 * A turn by a multiple of 90° clockwise. jimp turns anticlockwise, hence the minus; by a multiple
 * of 90° it moves whole pixels (alpha with them) into one new bitmap, exactly, and a quarter turn
 * swaps width and height.
 */
export function clockwiseRotation(degrees: 90 | 180 | 270): PixelOperation {
  return {
    apply: (bitmap) => withJimpImage(bitmap, (image) => rotatePlugin.rotate(image, -degrees)),
    workingBytesPerPixel: 4,
  };
}
