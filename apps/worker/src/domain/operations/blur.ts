import { methods as blurPlugin } from '@jimp/plugin-blur';
import { BLUR_RADIUS } from '@pixelmill/contracts';
import { withJimpImage } from './jimp-image';
import type { PixelOperation } from './pixel-operation';

/**
 * jimp's blur keeps the sums of four channels for every pixel in plain arrays of numbers, on the
 * thread's heap (8 bytes each), and grows them as it goes: it needed 38–46 bytes a pixel of heap at
 * 2 and 8 megapixels. Plus one byte a pixel for the alpha kept aside.
 */
const JIMP_BLUR_BYTES_PER_PIXEL = 48;

/**
 * jimp's fast blur (two box blurs, close to a Gaussian) of BLUR_RADIUS, on the colours only: jimp
 * blurs alpha too, so each pixel's alpha is put back afterwards, and transparent areas keep their
 * exact outline.
 */
export const blur: PixelOperation = {
  apply: (bitmap) => {
    const { data } = bitmap;
    const alpha = new Uint8Array(data.length / 4);
    for (let i = 3, pixel = 0; i < data.length; i += 4, pixel++) alpha[pixel] = data[i]!;
    const blurred = withJimpImage(bitmap, (image) => blurPlugin.blur(image, BLUR_RADIUS));
    const out = blurred.data;
    for (let i = 3, pixel = 0; i < out.length; i += 4, pixel++) out[i] = alpha[pixel]!;
    return blurred;
  },
  workingBytesPerPixel: JIMP_BLUR_BYTES_PER_PIXEL + 1,
};
