import type { PixelOperation } from './pixel-operation';

// The loops of this folder index the buffer directly: per-pixel callbacks would allocate on images
// of tens of megapixels. `i` always points at a pixel's red byte. jimp has no plugin for this one.

export const swapRedBlue: PixelOperation = {
  apply: (bitmap) => {
    const { data } = bitmap;
    for (let i = 0; i < data.length; i += 4) {
      const red = data[i]!;
      data[i] = data[i + 2]!;
      data[i + 2] = red;
    }
    return bitmap;
  },
  workingBytesPerPixel: 0,
};
