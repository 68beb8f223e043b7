import bmp from '@jimp/js-bmp';
import gif from '@jimp/js-gif';
import jpeg from '@jimp/js-jpeg';
import png, { PNGColorType, PNGFilterType } from '@jimp/js-png';
import { inflateSync } from 'node:zlib';
import type { ImageType } from '@pixelmill/contracts';
import { BitmapImage, GifCodec, GifFrame, GifUtil } from 'gifwrap';
import type { RgbaBitmap } from './bitmap';
import { checkPixelLimit, planDecode, toMb, type DecodePlan } from './decode-plan';
import { describeDecoderError } from './decoder-errors';
import { ImageDecodeError, PermanentWorkError } from './work-errors';

// jimp stays behind this module. Its format plugins (and gifwrap, its GIF library) are used
// directly: `Jimp.read` sniffs the type through a dynamic import() of the ESM-only `file-type`,
// which breaks under jest and CommonJS. The type comes from the task and is checked here instead.

export interface ImageCodecOptions {
  /** zlib level 0–9 of PNG output; scripts/measure-png-deflate.js measures the choices. */
  pngDeflateLevel: number;
  /** JPEG output quality, 1–100. */
  jpegQuality: number;
  /**
   * Largest width × height decoded, of the image, of any frame and of all frames together; a
   * larger image is refused before its pixels are allocated.
   */
  maxPixels: number;
  /** The most memory one transform may need; an image estimated to need more is refused. */
  maxMemoryBytes: number;
}

interface FormatCodec {
  decode(bytes: Buffer, plan: DecodePlan): RgbaBitmap;
  encode(bitmap: RgbaBitmap): Buffer | Promise<Buffer>;
}

/**
 * zlib's default strategy. jimp's default, Z_RLE, ignores the level: in our measurements it was
 * a little faster on photos but 5–10 % larger on most images, screenshots included.
 */
const Z_DEFAULT_STRATEGY = 0;

/**
 * Every row filtered with Sub (each byte less the one a pixel to its left). pngjs's default tries
 * all five filters on each row and keeps the one with the smallest sum, which cost more than the
 * deflating. With Sub (and the RGB packing below), a swap-red-blue of a 512×512 photo-like PNG
 * took 0.65–0.85 of the CPU (three sittings), of a 1920×1080 one 0.5–0.7, of a screenshot-like
 * one 0.3–0.4; the output was 6–8 % larger on photo-like images (2 % on a real photo), 27 %
 * smaller on screenshot-like ones (4 % larger on real screenshots). Lossless either way: the
 * filter only decides what is deflated. scripts/measure-png-encoder.js measures the choices.
 */
const PNG_ROW_FILTER = PNGFilterType.SUB;

/** The RGB bytes of an opaque bitmap, packed here: pngjs's own packing reads each pixel through a closure, several times slower. */
function packRgb({ data, width, height }: RgbaBitmap): Buffer {
  const rgb = Buffer.allocUnsafe(width * height * 3);
  for (let from = 0, to = 0; from < data.length; from += 4, to += 3) {
    rgb[to] = data[from]!;
    rgb[to + 1] = data[from + 1]!;
    rgb[to + 2] = data[from + 2]!;
  }
  return rgb;
}

/**
 * Lossless: RGB when every pixel is opaque (smaller), RGBA otherwise so alpha survives. The
 * bytes are handed over in the output's own layout, so pngjs takes them as they are.
 */
function encodePng(format: ReturnType<typeof png>, bitmap: RgbaBitmap, deflateLevel: number): Buffer {
  const common = { deflateLevel, deflateStrategy: Z_DEFAULT_STRATEGY, filterType: PNG_ROW_FILTER };
  if (hasTransparency(bitmap)) {
    return format.encode(bitmap, {
      ...common,
      colorType: PNGColorType.COLOR_ALPHA,
      inputColorType: PNGColorType.COLOR_ALPHA,
      inputHasAlpha: true,
    });
  }
  const rgb = { data: packRgb(bitmap), width: bitmap.width, height: bitmap.height };
  return format.encode(rgb, { ...common, colorType: PNGColorType.COLOR, inputColorType: PNGColorType.COLOR, inputHasAlpha: false });
}

function hasTransparency({ data }: RgbaBitmap): boolean {
  for (let i = 3; i < data.length; i += 4) {
    if (data[i] !== 255) return true;
  }
  return false;
}

/** A GIF frame has at most 256 palette entries, one of them spent on transparency if any. */
const GIF_PALETTE_SIZE = 256;

/** Whether the opaque pixels use more distinct colours than `limit`; stops counting past it. */
function hasMoreColoursThan({ data }: RgbaBitmap, limit: number): boolean {
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
    if (colours.size > limit) return true;
  }
  return false;
}

/**
 * GIF through gifwrap (jimp's GIF library). A GIF that was decoded has at most 256 colours and
 * the operations but blur map colours to colours or move pixels, so the result usually fits a
 * palette as it is and comes out lossless. Only an image with more colours (a blurred one) is
 * quantized (lossy; Wu's method, which
 * measured closer than jimp's NeuQuant on gradients and as close on photos); the quantizer
 * rounds alpha too, so transparent pixels are restored after it. GIF has no partial alpha:
 * alpha 0 is transparent, anything else opaque.
 */
async function encodeGif(bitmap: RgbaBitmap): Promise<Buffer> {
  const { data } = bitmap;
  const transparent = new Uint8Array(data.length / 4);
  let anyTransparent = false;
  for (let i = 3, pixel = 0; i < data.length; i += 4, pixel++) {
    if (data[i] === 0) {
      transparent[pixel] = 1;
      anyTransparent = true;
    } else {
      data[i] = 255;
    }
  }
  const maxColours = anyTransparent ? GIF_PALETTE_SIZE - 1 : GIF_PALETTE_SIZE;
  if (hasMoreColoursThan(bitmap, maxColours)) {
    GifUtil.quantizeWu(new BitmapImage(bitmap), maxColours);
    for (let i = 3, pixel = 0; i < data.length; i += 4, pixel++) data[i] = transparent[pixel] ? 0 : 255;
  }
  const gif = await new GifCodec().encodeGif([new GifFrame(bitmap)], {});
  return gif.buffer;
}

function createFormats(options: ImageCodecOptions): Readonly<Record<ImageType, FormatCodec>> {
  const pngFormat = png();
  const jpegFormat = jpeg();
  const bmpFormat = bmp();
  const gifFormat = gif();
  return {
    'image/png': {
      decode: (bytes, plan) => {
        if (plan.inspection?.pngInterlaced) checkInterlacedPngInflates(bytes, plan.inspection.pngScanlineBytes);
        return pngFormat.decode(bytes);
      },
      encode: (bitmap) => encodePng(pngFormat, bitmap, options.pngDeflateLevel),
    },
    'image/jpeg': {
      decode: (bytes) => {
        const decoded = jpegFormat.decode(bytes, {
          formatAsRGBA: true,
          maxResolutionInMP: options.maxPixels / 1_000_000,
          // jpeg-js counts less than it holds (its coefficients, not their objects): a backstop.
          maxMemoryUsageInMB: toMb(options.maxMemoryBytes),
        });
        return { data: decoded.data, width: decoded.width, height: decoded.height };
      },
      encode: (bitmap) => jpegFormat.encode(bitmap, { quality: options.jpegQuality }),
    },
    // The BMP decoder gives every pixel alpha 255, and the encoder writes 24-bit pixels after
    // swapping `bitmap.data` to ABGR in place: encoding must be the last use of a bitmap.
    'image/bmp': {
      decode: (bytes) => bmpFormat.decode(bytes),
      encode: (bitmap) => bmpFormat.encode(bitmap),
    },
    // Only the first frame of an animation is decoded.
    'image/gif': {
      decode: (bytes) => gifFormat.decode(bytes),
      encode: encodeGif,
    },
  };
}

/** IDAT chunks, concatenated: the zlib stream of a PNG's scanlines. */
function pngImageData(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 8; offset + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    if (type === 'IDAT') parts.push(bytes.subarray(offset + 8, Math.min(bytes.length, offset + 8 + length)));
    if (type === 'IEND') break;
    offset += 12 + length;
  }
  return Buffer.concat(parts);
}

/**
 * pngjs inflates an interlaced image with no bound on the output (a plain one it stops at the
 * size the header declares), so a small file could inflate to gigabytes before anything checks
 * it. Inflated here first, stopping past the declared size: twice the inflating, for interlaced
 * images only.
 */
function checkInterlacedPngInflates(bytes: Buffer, declaredBytes: number): void {
  try {
    inflateSync(pngImageData(bytes), { maxOutputLength: Math.max(1, declaredBytes) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImageDecodeError(
        `could not decode image/png: the file is truncated or corrupt ` +
          `(its compressed data inflates past the ${declaredBytes} bytes its header declares)`,
      );
    }
    // Damaged data: pngjs says how, in its words.
  }
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Decodes the supported image types to RGBA pixels and encodes pixels back to the same type. */
export class ImageCodec {
  private readonly formats: Readonly<Record<ImageType, FormatCodec>>;

  constructor(private readonly options: ImageCodecOptions) {
    this.formats = createFormats(options);
  }

  /**
   * Decodes bytes declared as `contentType`. Throws an ImageDecodeError, whose message is fit to
   * show a user, when there is no codec for the type, the bytes are of another type, the image
   * breaks a limit (see planDecode), or the decoder fails.
   */
  decode(bytes: Buffer, contentType: string): RgbaBitmap {
    const plan = planDecode(bytes, contentType, this.options);
    const fail = (why: string, cause?: unknown) => new ImageDecodeError(`could not decode ${contentType}: ${why}`, { cause });
    let bitmap: RgbaBitmap;
    try {
      bitmap = this.formats[plan.type].decode(bytes, plan);
    } catch (err) {
      if (err instanceof ImageDecodeError) throw err;
      throw fail(describeDecoderError(err), err);
    }
    checkPixelLimit(plan.type, bitmap.width, bitmap.height, this.options.maxPixels);
    if (bitmap.width < 1 || bitmap.height < 1 || bitmap.data.length !== bitmap.width * bitmap.height * 4) {
      throw fail(`the decoder returned ${bitmap.data.length} bytes for ${bitmap.width}x${bitmap.height} pixels`);
    }
    return bitmap;
  }

  /**
   * Encodes pixels as `type`. May reuse or scramble `bitmap.data` (BMP, GIF): do not use the
   * bitmap afterwards. An encoder failure is permanent too: the same pixels would fail again.
   */
  async encode(bitmap: RgbaBitmap, type: ImageType): Promise<Buffer> {
    try {
      return await this.formats[type].encode(bitmap);
    } catch (err) {
      throw new PermanentWorkError(`could not encode ${type}: ${describe(err)}`, { cause: err });
    }
  }
}
