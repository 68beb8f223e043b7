/** Decoded pixels: `data` holds width × height RGBA quadruplets, row by row, one byte per channel. */
export interface RgbaBitmap {
  data: Buffer;
  width: number;
  height: number;
}

export const BYTES_PER_PIXEL = 4;

/** An animation's timing, kept from the source. */
export interface Animation {
  /** Each frame's delay, in hundredths of a second. */
  delays: number[];
  /** How often it repeats (0: forever); null: it plays once (the file had no loop extension). */
  loops: number | null;
}

/**
 * A decoded image: one bitmap, or the frames of an animated GIF with their timing, each frame a
 * whole picture of the same size (the operation applies to each alike).
 */
export interface DecodedImage {
  frames: RgbaBitmap[];
  animation?: Animation;
}

/** Whether any pixel is not fully opaque. */
export function hasTransparency({ data }: RgbaBitmap): boolean {
  for (let i = 3; i < data.length; i += 4) {
    if (data[i] !== 255) return true;
  }
  return false;
}

/**
 * The RGB bytes of an opaque bitmap, packed into `out` from `offset` (a new buffer by default):
 * pngjs's own packing reads each pixel through a closure, several times slower.
 */
export function packRgb({ data, width, height }: RgbaBitmap, out = Buffer.allocUnsafe(width * height * 3), offset = 0): Buffer {
  for (let from = 0, to = offset; from < data.length; from += 4, to += 3) {
    out[to] = data[from]!;
    out[to + 1] = data[from + 1]!;
    out[to + 2] = data[from + 2]!;
  }
  return out;
}
