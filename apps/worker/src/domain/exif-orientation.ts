import type { ExifOrientation } from '@pixelmill/contracts';
import type { RgbaBitmap } from './bitmap';

/**
 * For each EXIF orientation, where row `y` of the upright picture starts in the stored pixels and
 * the step between its pixels there (pixel indices, of a stored image `w`×`h`). 5–8 read stored
 * columns as rows: the upright picture is `h`×`w`.
 */
const UPRIGHT_ROWS: Readonly<Record<Exclude<ExifOrientation, 1>, (y: number, w: number, h: number) => [start: number, step: number]>> = {
  2: (y, w) => [y * w + w - 1, -1], // mirrored
  3: (y, w, h) => [(h - 1 - y) * w + w - 1, -1], // turned a half
  4: (y, w, h) => [(h - 1 - y) * w, 1], // flipped
  5: (y, w) => [y, w], // transposed
  6: (y, w, h) => [(h - 1) * w + y, -w], // stored turned a quarter anticlockwise: turned clockwise
  7: (y, w, h) => [(h - 1) * w + w - 1 - y, -w], // transversed
  8: (y, w) => [w - 1 - y, w], // stored turned a quarter clockwise: turned anticlockwise
};

/**
 * The pixels of a JPEG stored with EXIF `orientation`, turned upright: one pass into a new bitmap
 * (the same bitmap for 1), whole pixels moved, alpha with them.
 */
export function orientUpright(bitmap: RgbaBitmap, orientation: ExifOrientation): RgbaBitmap {
  if (orientation === 1) return bitmap;
  const { width: w, height: h } = bitmap;
  const swapped = orientation >= 5;
  const width = swapped ? h : w;
  const height = swapped ? w : h;
  // Whole pixels as 32-bit words; a Buffer from Node's pool may start unaligned, and is copied then.
  const stored = bitmap.data.byteOffset % 4 === 0 ? bitmap.data : Buffer.from(bitmap.data);
  const from = new Uint32Array(stored.buffer, stored.byteOffset, w * h);
  const data = Buffer.allocUnsafeSlow(w * h * 4);
  const to = new Uint32Array(data.buffer, data.byteOffset, w * h);
  const row = UPRIGHT_ROWS[orientation];
  for (let y = 0, out = 0; y < height; y++) {
    const [start, step] = row(y, w, h);
    for (let x = 0, at = start; x < width; x++, at += step) to[out++] = from[at]!;
  }
  return { data, width, height };
}
