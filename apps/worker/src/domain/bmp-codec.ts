import { decode as readBmp, encode as writeBmp } from 'bmp-ts';
import { hasTransparency, type RgbaBitmap } from './bitmap';

// BMP through bmp-ts, used directly: @jimp/js-bmp, which wraps it, sets every pixel's alpha to 255
// and writes 24-bit pixels only, so a BMP with an alpha channel lost its transparency.

/** Where fields sit in a BMP: a 14-byte file header, then the info header. */
const BITS_PER_PIXEL_AT = 28;
const COMPRESSION_AT = 30;
/**
 * The alpha mask: in the info header of 56 bytes or more (BITMAPV3INFOHEADER, V4, V5), or, with
 * BI_ALPHABITFIELDS, after the red, green and blue masks that follow a 40- or 52-byte one; at
 * byte 66 of the file either way.
 */
const ALPHA_MASK_AT = 66;
const INFO_HEADER_SIZE_AT = 14;
/** The largest info header without an alpha mask (BITMAPV2INFOHEADER: red, green and blue masks). */
const V2_INFO_HEADER_SIZE = 52;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

const FILE_HEADER_SIZE = 14;
const V4_HEADER_SIZE = 108;
const PIXELS_AT = FILE_HEADER_SIZE + V4_HEADER_SIZE;
/** LCS_sRGB, the colour space of a BITMAPV4HEADER: the characters "sRGB" as a 32-bit number. */
const LCS_SRGB = 0x73524742;

const u16le = (bytes: Uint8Array, at: number): number => bytes[at]! | (bytes[at + 1]! << 8);
const u32le = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;

/**
 * Whether the BMP's header declares an alpha channel: 32 bits a pixel with an alpha mask, which
 * bmp-ts applies (as Chromium does, whatever the compression). Any other BMP (palettes, 16 and 24
 * bits, 32 bits without an alpha mask, whose fourth byte is padding) is opaque.
 */
export function bmpDeclaresAlpha(bytes: Uint8Array): boolean {
  if (bytes.length < ALPHA_MASK_AT + 4 || u16le(bytes, BITS_PER_PIXEL_AT) !== 32) return false;
  const hasAlphaMask = u32le(bytes, INFO_HEADER_SIZE_AT) > V2_INFO_HEADER_SIZE || u32le(bytes, COMPRESSION_AT) === BI_ALPHABITFIELDS;
  return hasAlphaMask && u32le(bytes, ALPHA_MASK_AT) !== 0;
}

/** The bytes a pixel the encoder writes: 4 for an image that may keep an alpha channel, else 3. */
export const bmpEncodedBytesPerPixel = (bytes: Uint8Array): number => (bmpDeclaresAlpha(bytes) ? 4 : 3);

/**
 * RGBA pixels of a BMP. Alpha is kept when the header declares an alpha channel and some pixel's
 * alpha is not 0: many writers leave it 0 everywhere, and Chromium shows such a file opaque.
 */
export function decodeBmp(bytes: Buffer): RgbaBitmap {
  // A, B, G, R: bmp-ts's own order, the one its every bit depth writes alike.
  const { data, width, height } = readBmp(bytes);
  data.swap32();
  if (!bmpDeclaresAlpha(bytes) || !anyAlphaAbove0(data)) fillAlpha(data);
  return { data, width, height };
}

/**
 * A BMP of the bitmap: 24 bits a pixel when it is opaque (bmp-ts's encoder, after swapping
 * `bitmap.data` to A, B, G, R in place: encoding must be the last use of the bitmap), 32 with an
 * alpha channel otherwise.
 */
export function encodeBmp(bitmap: RgbaBitmap): Buffer {
  if (hasTransparency(bitmap)) return encodeBmp32(bitmap);
  const { data, width, height } = bitmap;
  data.swap32();
  return writeBmp({ data, width, height }).data;
}

/**
 * A BITMAPV4HEADER, BI_BITFIELDS, masks of B, G, R, A in that order of bytes, sRGB; rows bottom-up
 * (32-bit rows need no padding). Straight alpha, as decoded.
 */
function encodeBmp32({ data, width, height }: RgbaBitmap): Buffer {
  const rowBytes = width * 4;
  const out = Buffer.allocUnsafe(PIXELS_AT + rowBytes * height);
  out.fill(0, 0, PIXELS_AT);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(PIXELS_AT, 10);
  out.writeUInt32LE(V4_HEADER_SIZE, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(32, 28);
  out.writeUInt32LE(BI_BITFIELDS, 30);
  out.writeUInt32LE(rowBytes * height, 34);
  // Resolution, colours used and important stay 0, as in the 24-bit output.
  out.writeUInt32LE(0x00ff0000, 54);
  out.writeUInt32LE(0x0000ff00, 58);
  out.writeUInt32LE(0x000000ff, 62);
  out.writeUInt32LE(0xff000000, ALPHA_MASK_AT);
  out.writeUInt32LE(LCS_SRGB, 70);
  // The endpoints and gammas that follow are for a calibrated colour space only: 0.
  for (let y = 0; y < height; y++) {
    let from = (height - 1 - y) * rowBytes;
    const end = from + rowBytes;
    for (let to = PIXELS_AT + y * rowBytes; from < end; from += 4, to += 4) {
      out[to] = data[from + 2]!;
      out[to + 1] = data[from + 1]!;
      out[to + 2] = data[from]!;
      out[to + 3] = data[from + 3]!;
    }
  }
  return out;
}

function anyAlphaAbove0(data: Buffer): boolean {
  for (let i = 3; i < data.length; i += 4) {
    if (data[i] !== 0) return true;
  }
  return false;
}

function fillAlpha(data: Buffer): void {
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
}
