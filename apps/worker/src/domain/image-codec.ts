import jpeg from '@jimp/js-jpeg';
import png, { PNGColorType, PNGFilterType } from '@jimp/js-png';
import { inflateSync } from 'node:zlib';
import type { ImageType } from '@pixelmill/contracts';
import { hasTransparency, packRgb, type DecodedImage, type RgbaBitmap } from './bitmap';
import { decodeBmp, encodeBmp } from './bmp-codec';
import { checkPixelLimit, planDecode, toMb, type DecodePlan } from './decode-plan';
import { describeDecoderError } from './decoder-errors';
import { orientUpright } from './exif-orientation';
import { decodeGif, encodeGif } from './gif-frames';
import { decodeTiff, encodeTiff } from './tiff-codec';
import { ImageDecodeError, PermanentWorkError } from './work-errors';

// jimp stays behind this module and its format modules. Its format plugins (and its libraries:
// omggif and gifwrap for GIF, utif for TIFF, bmp-ts for BMP) are used directly: `Jimp.read`
// sniffs the type through a dynamic import() of the ESM-only `file-type`, which breaks under jest
// and CommonJS. The type comes from the task and is checked here instead.

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
  decode(bytes: Buffer, plan: DecodePlan): DecodedImage;
  encode(image: DecodedImage): Buffer | Promise<Buffer>;
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

function createFormats(options: ImageCodecOptions): Readonly<Record<ImageType, FormatCodec>> {
  const pngFormat = png();
  const jpegFormat = jpeg();
  const still = (bitmap: RgbaBitmap): DecodedImage => ({ frames: [bitmap] });
  return {
    'image/png': {
      decode: (bytes, plan) => {
        if (plan.inspection?.pngInterlaced) checkInterlacedPngInflates(bytes, plan.inspection.pngScanlineBytes);
        return still(pngFormat.decode(bytes));
      },
      encode: (image) => encodePng(pngFormat, firstFrame(image), options.pngDeflateLevel),
    },
    // Turned upright by its EXIF orientation; the output carries no EXIF (jpeg-js writes an APP1
    // segment only when handed one), so nothing turns it again.
    'image/jpeg': {
      decode: (bytes, plan) => {
        const decoded = jpegFormat.decode(bytes, {
          formatAsRGBA: true,
          maxResolutionInMP: options.maxPixels / 1_000_000,
          // jpeg-js counts less than it holds (its coefficients, not their objects): a backstop.
          maxMemoryUsageInMB: toMb(options.maxMemoryBytes),
        });
        return still(orientUpright({ data: decoded.data, width: decoded.width, height: decoded.height }, plan.orientation));
      },
      encode: (image) => jpegFormat.encode(firstFrame(image), { quality: options.jpegQuality }),
    },
    // Alpha kept where the file has an alpha channel; written 24-bit when opaque, 32-bit with
    // alpha otherwise (see bmp-codec.ts). Encoding may scramble `bitmap.data`: it is the last use.
    'image/bmp': {
      decode: (bytes) => still(decodeBmp(bytes)),
      encode: (image) => encodeBmp(firstFrame(image)),
    },
    // Every frame of an animation, each drawn on the whole screen (see gif-frames.ts).
    'image/gif': {
      decode: (bytes) => decodeGif(bytes),
      encode: encodeGif,
    },
    // The first page of a multi-page TIFF only, read and checked by the plan (see tiff-codec.ts).
    'image/tiff': {
      decode: (bytes, plan) => still(decodeTiff(bytes, plan.tiff!)),
      encode: (image) => encodeTiff(firstFrame(image)),
    },
  };
}

/** The one bitmap of a still image: only a GIF holds several frames. */
function firstFrame({ frames }: DecodedImage): RgbaBitmap {
  if (frames.length !== 1) throw new Error(`${frames.length} frames for a format of one`);
  return frames[0]!;
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
   * Decodes bytes declared as `contentType`: one bitmap, or every frame of an animated GIF. Throws
   * an ImageDecodeError, whose message is fit to show a user, when there is no codec for the type,
   * the bytes are of another type, the image breaks a limit (see planDecode), or the decoder fails.
   */
  decodeImage(bytes: Buffer, contentType: string): DecodedImage {
    const plan = planDecode(bytes, contentType, this.options);
    const fail = (why: string, cause?: unknown) => new ImageDecodeError(`could not decode ${contentType}: ${why}`, { cause });
    let image: DecodedImage;
    try {
      image = this.formats[plan.type].decode(bytes, plan);
    } catch (err) {
      if (err instanceof ImageDecodeError) throw err;
      throw fail(describeDecoderError(err), err);
    }
    for (const bitmap of image.frames) {
      checkPixelLimit(plan.type, bitmap.width, bitmap.height, this.options.maxPixels);
      if (bitmap.width < 1 || bitmap.height < 1 || bitmap.data.length !== bitmap.width * bitmap.height * 4) {
        throw fail(`the decoder returned ${bitmap.data.length} bytes for ${bitmap.width}x${bitmap.height} pixels`);
      }
    }
    return image;
  }

  /** The image's bitmap (of an animated GIF, its first frame as shown); see decodeImage. */
  decode(bytes: Buffer, contentType: string): RgbaBitmap {
    return this.decodeImage(bytes, contentType).frames[0]!;
  }

  /**
   * Encodes an image as `type`: every frame and its timing for a GIF. May reuse or scramble the
   * frames' data (BMP, GIF): do not use them afterwards. An encoder failure is permanent too: the
   * same pixels would fail again.
   */
  async encodeImage(image: DecodedImage, type: ImageType): Promise<Buffer> {
    try {
      return await this.formats[type].encode(image);
    } catch (err) {
      throw new PermanentWorkError(`could not encode ${type}: ${describe(err)}`, { cause: err });
    }
  }

  /** Encodes one bitmap as `type`; see encodeImage. */
  encode(bitmap: RgbaBitmap, type: ImageType): Promise<Buffer> {
    return this.encodeImage({ frames: [bitmap] }, type);
  }
}
