import {
  detectImageType,
  IMAGE_TYPES,
  inspectImage,
  readJpegOrientation,
  resultDimensions,
  resultSizeProblem,
  type Dimensions,
  type ExifOrientation,
  type ImageInspection,
  type ImageType,
  type Operation,
  type OperationParams,
} from '@pixelmill/contracts';
import { IMAGE_TYPE_BYTES } from '@pixelmill/kit';
import { bmpEncodedBytesPerPixel } from './bmp-codec';
import { TRUNCATED_OR_CORRUPT } from './decoder-errors';
import { operationWorkingBytes } from './operation-registry';
import { readTiffPage, tiffCodecMemoryBytes, type TiffPage } from './tiff-codec';
import { ImageDecodeError } from './work-errors';

// Checks made before an image is decoded, on the bytes alone (a linear scan, no pixels), so that
// what the decoder would allocate is known and refused before it allocates: the pixel limit for
// every frame and in all, and the memory the whole transform needs.

export interface DecodeLimits {
  /** Largest width × height of the image, of any one frame, and of all frames together. */
  maxPixels: number;
  /** The most memory one transform may need (the worker's budget): a larger image never fits. */
  maxMemoryBytes: number;
}

export interface DecodePlan {
  type: ImageType;
  /** Null when the header is too damaged to read: the decoder then reports the damage. */
  inspection: ImageInspection | null;
  /** A TIFF's first page, read and checked: the only thing its decoder is given. */
  tiff?: TiffPage;
  /** How a JPEG's pixels are turned upright after decoding (1 for every other type). */
  orientation: ExifOrientation;
  /**
   * What decoding, the operation (when one was named) and encoding will hold at their peak, source
   * included.
   */
  memoryBytes: number;
}

/**
 * Bytes that each decoder holds at its peak, from reading them and measuring them
 * (scripts/measure-large-images.js gives the peak RSS of each format against this estimate):
 *
 * - jpeg-js keeps every 8×8 block of every component as an Int32Array of its own until the end:
 *   256 bytes of coefficients plus some 200 of object and allocation, then 64 bytes of samples for
 *   each block, then the samples again interleaved (up to 4 a pixel) and the RGBA output. Its
 *   encoder holds about 2 bytes a pixel more. A 7000×7000 JPEG of 4:4:4 measured 31 bytes a pixel.
 * - pngjs inflates every scanline (kept until the end), unfilters them into a copy, expands them
 *   to RGBA at their bit depth (16-bit: 8 bytes a pixel), then to 8 bits (4 more); its encoder
 *   filters a copy of the RGBA and deflates it. 16384×3000 at 16 bits measured 1.14 GB for an
 *   estimate of 1.7 GB (the 100 MB source counts twice); 7000×7000 interlaced, 0.94 GB.
 * - bmp-ts reads its colour table into one object per entry, then fills RGBA (turned to our order
 *   in place); the encoder writes 3 bytes a pixel, or 4 for a file with an alpha channel (see
 *   bmp-codec.ts).
 * - omggif decodes each frame's indices (1 byte a pixel of the frame) and draws them on the
 *   screen's RGBA, which is copied for every frame (a whole screen each, see gif-frames.ts), with a
 *   second screen kept for a frame that restores what was before it; our GIF encoder marks
 *   transparency (1 byte a pixel), gifwrap indexes the pixels (1) and compresses.
 * - utif: see tiffCodecMemoryBytes.
 * - A JPEG with an EXIF orientation other than 1 is turned upright into a second bitmap.
 */
const JPEG_BYTES_PER_BLOCK = 256 + 224 + 64;
const JPEG_BYTES_PER_PIXEL = 4 + 4 + 2;
const BMP_BYTES_PER_PALETTE_ENTRY = 80;
const GIF_ENCODE_BYTES_PER_PIXEL = 3;
/** RGBA at 8 bits. */
const RGBA_BYTES = 4;
/** A header too damaged to read: the decoder fails on it, holding little more than the file. */
const UNREADABLE_SOURCE_FACTOR = 2;

/** Colour tables hold at most 256 entries (8-bit pixels); a larger one is a trap, read entry by entry. */
const MAX_BMP_PALETTE_ENTRIES = 256;

const MB = 2 ** 20;

/** Megabytes, rounded up: what the reasons tell users. */
export const toMb = (bytes: number): number => Math.ceil(bytes / MB);

const isImageType = (value: string): value is ImageType => (IMAGE_TYPES as readonly string[]).includes(value);

/** The pixels of the bitmap a decoder returns: one that takes the last header (pngjs) or allocates for each (jpeg-js) gets the largest. */
const decodedPixels = ({ width, height, largestFrame }: ImageInspection): number =>
  Math.max(width * height, largestFrame.width * largestFrame.height);

/** The size of that bitmap: what the operation gets. */
const decodedSize = ({ width, height, largestFrame }: ImageInspection): Dimensions =>
  width * height >= largestFrame.width * largestFrame.height ? { width, height } : largestFrame;

/** The size the operation gets once an EXIF orientation of 5–8 (a quarter turn) has been applied. */
const uprightSize = (size: Dimensions, orientation: ExifOrientation): Dimensions =>
  orientation >= 5 ? { width: size.height, height: size.width } : size;

function estimateCodecMemoryBytes(
  type: ImageType,
  inspection: ImageInspection,
  source: Uint8Array,
  { tiff, orientation }: Pick<DecodePlan, 'tiff' | 'orientation'>,
): number {
  const sourceBytes = source.byteLength;
  const pixels = decodedPixels(inspection);
  switch (type) {
    case 'image/jpeg': {
      const turning = orientation === 1 ? 0 : pixels * RGBA_BYTES;
      return sourceBytes + inspection.jpegBlocks * JPEG_BYTES_PER_BLOCK + pixels * JPEG_BYTES_PER_PIXEL + turning;
    }
    case 'image/png': {
      // Every IHDR's scanlines twice (inflated, unfiltered), the RGBA at its depth, the 8-bit
      // RGBA of a 16-bit image, and encoding: a filtered copy of the RGBA and its deflated bytes.
      // Interlaced: our bounded inflate first, and pngjs's unbounded one, which grows by doubling.
      const toEightBits = inspection.bitsPerSample === 16 ? pixels * RGBA_BYTES : 0;
      const scanlineCopies = inspection.pngInterlaced ? 4 : 2;
      return sourceBytes * 2 + inspection.pngScanlineBytes * scanlineCopies + inspection.decodedBytes + toEightBits + pixels * RGBA_BYTES;
    }
    case 'image/bmp':
      return (
        sourceBytes +
        inspection.bmpPaletteEntries * BMP_BYTES_PER_PALETTE_ENTRY +
        inspection.decodedBytes +
        pixels * bmpEncodedBytesPerPixel(source)
      );
    case 'image/gif': {
      // The largest frame's indices, the screen drawn on and the one kept for "restore to
      // previous", then every frame's picture (totalPixels: a whole screen each) and its encoding.
      const { largestFrame } = inspection;
      const screens = 2 * inspection.width * inspection.height * RGBA_BYTES;
      return (
        sourceBytes +
        largestFrame.width * largestFrame.height +
        screens +
        inspection.totalPixels * (RGBA_BYTES + GIF_ENCODE_BYTES_PER_PIXEL)
      );
    }
    case 'image/tiff':
      return tiffCodecMemoryBytes(tiff!, sourceBytes);
  }
}

/**
 * Checks bytes declared as `contentType` before decoding: the type and its magic bytes, the size
 * of the image, of each frame and of all frames against the pixel limit (a GIF's frames each as
 * the whole screen they are drawn on), what the decoder would read entry by entry (a TIFF's first
 * page and its strips, see readTiffPage), and the memory of the whole transform against the most
 * there is. Throws an
 * ImageDecodeError whose message is fit to show a user; returns the memory the transform needs.
 * With `op`, the operation to come (and its `params`), what it holds besides the decoded pixels (a
 * second bitmap, working arrays, a resize's result) is counted too, and the size of its result is
 * held to the limits; without it, decoding and encoding only (the codec's own check).
 */
export function planDecode(
  bytes: Uint8Array,
  contentType: string,
  limits: DecodeLimits,
  op?: Operation,
  params?: OperationParams,
): DecodePlan {
  const fail = (why: string) => new ImageDecodeError(`could not decode ${contentType}: ${why}`);
  if (!isImageType(contentType)) throw fail('no codec for this content type');
  const type = contentType;
  const actual = detectImageType(bytes.subarray(0, IMAGE_TYPE_BYTES));
  if (actual !== type) {
    throw fail(actual ? `the bytes are ${actual}` : 'the bytes are not an image of a supported type');
  }
  const inspection = inspectImage(type, bytes);
  if (!inspection) {
    // A TIFF's decoder is given only a page read here: one that cannot be read is not decoded at all.
    if (type === 'image/tiff') throw fail(`${TRUNCATED_OR_CORRUPT} (its first directory cannot be read)`);
    return { type, inspection, orientation: 1, memoryBytes: bytes.byteLength * UNREADABLE_SOURCE_FACTOR };
  }

  const { maxPixels } = limits;
  const tooLarge = (what: string) => new ImageDecodeError(`${type} ${what} is larger than the limit of ${maxPixels} pixels`);
  checkPixelLimit(type, inspection.width, inspection.height, maxPixels);
  const { largestFrame: largest, frameCount, totalPixels } = inspection;
  if (largest.width * largest.height > maxPixels) {
    throw tooLarge(`with a frame of ${largest.width}x${largest.height} pixels`);
  }
  if (totalPixels > maxPixels) throw tooLarge(`with ${frameCount} frames of ${totalPixels} pixels in all`);
  if (type === 'image/jpeg' && frameCount > 1) {
    throw fail(`the file uses a variant of the format that is not supported (${frameCount} frames; only single-frame JPEGs are)`);
  }
  if (inspection.bmpPaletteEntries > MAX_BMP_PALETTE_ENTRIES) {
    throw fail(
      `the file is truncated or corrupt (its colour table claims ${inspection.bmpPaletteEntries} entries, ` +
        `at most ${MAX_BMP_PALETTE_ENTRIES} make sense)`,
    );
  }

  const tiff = type === 'image/tiff' ? readTiffPage(bytes) : undefined;
  const orientation = type === 'image/jpeg' ? readJpegOrientation(bytes) : 1;
  const operand = uprightSize(decodedSize(inspection), orientation);
  if (op !== undefined) checkResultSize(type, op, params, operand, frameCount, maxPixels);
  // An animated GIF's frames go through the operation one at a time; the frames done are held
  // until the encoding, each the result's size (larger than its source after an enlarging resize).
  const operationBytes =
    op === undefined ? 0 : operationWorkingBytes(op, operand, params) + heldResultBytes(op, params, operand, frameCount);
  const memoryBytes = estimateCodecMemoryBytes(type, inspection, bytes, { tiff, orientation }) + operationBytes;
  if (memoryBytes > limits.maxMemoryBytes) {
    throw new ImageDecodeError(
      `${type} of ${inspection.width}x${inspection.height} pixels needs ${toMb(memoryBytes)} MB to transform${operationBytes > 0 ? ` with ${op}` : ''}, ` +
        `the worker has ${toMb(limits.maxMemoryBytes)} MB (WORKER_MEMORY_MB)`,
    );
  }
  return { type, inspection, tiff, orientation, memoryBytes };
}

/**
 * The result of `op` is held to the pixel limit too, over all its frames (a resize can make more
 * pixels than its source), and a resize's to its own bounds (a side kept from the aspect ratio
 * can pass them).
 */
function checkResultSize(
  type: ImageType,
  op: Operation,
  params: OperationParams | undefined,
  source: Dimensions,
  frames: number,
  maxPixels: number,
): void {
  const problem = resultSizeProblem(op, params, source);
  if (problem !== undefined) throw new ImageDecodeError(problem);
  const { width, height } = resultDimensions(op, params, source);
  if (width * height * frames > maxPixels) {
    const what = frames > 1 ? `${frames} frames of ${width}x${height} pixels` : `${width}x${height} pixels`;
    throw new ImageDecodeError(
      `${op} makes ${what} of this ${type} of ${source.width}x${source.height}, more than the limit of ${maxPixels} pixels`,
    );
  }
}

/** What the frames already done hold beyond their sources' bitmaps, while the next is worked on. */
function heldResultBytes(op: Operation, params: OperationParams | undefined, source: Dimensions, frames: number): number {
  const { width, height } = resultDimensions(op, params, source);
  return Math.max(0, frames - 1) * Math.max(0, width * height - source.width * source.height) * RGBA_BYTES;
}

/** The limit on width × height, also checked on what a decoder returns. */
export function checkPixelLimit(type: ImageType, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new ImageDecodeError(`${type} of ${width}x${height} pixels is larger than the limit of ${maxPixels} pixels`);
  }
}
