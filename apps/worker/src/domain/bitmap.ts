/** Decoded pixels: `data` holds width × height RGBA quadruplets, row by row, one byte per channel. */
export interface RgbaBitmap {
  data: Buffer;
  width: number;
  height: number;
}

export const BYTES_PER_PIXEL = 4;
