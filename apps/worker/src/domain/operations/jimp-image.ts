import { createJimp } from '@jimp/core';
import type { RgbaBitmap } from '../bitmap';

// jimp's plugins are functions of a jimp image (`methods.flip(image, options)`), not of pixels: they
// call its methods (`scan`, `getPixelIndex`) and replace its `bitmap` fields with what they make.
// @jimp/core's image class, without formats or plugins, is such an image over our pixels, taken as
// they are (no copy). jimp's API stays in this folder.
const JimpImage = createJimp();
export type JimpImage = InstanceType<typeof JimpImage>;

/** Runs a plugin on an image over `bitmap`; returns the pixels the plugin leaves, which may be new. */
export function withJimpImage(bitmap: RgbaBitmap, plugin: (image: JimpImage) => unknown): RgbaBitmap {
  const image = new JimpImage({ data: bitmap.data, width: bitmap.width, height: bitmap.height });
  plugin(image);
  const { data, width, height } = image.bitmap;
  return { data, width, height };
}
