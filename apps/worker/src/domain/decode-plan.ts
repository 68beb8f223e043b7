import {
  detectImageType,
  IMAGE_TYPES,
  inspectImage,
  resultDimensions,
  resultSizeProblem,
  type Dimensions,
  type ImageInspection,
  type ImageType,
  type Operation,
  type OperationParams,
} from '@pixelmill/contracts';
import { IMAGE_TYPE_BYTES } from '@pixelmill/kit';
import { operationWorkingBytes } from './operation-registry';
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
 * - bmp-ts reads its colour table into one object per entry, then fills RGBA; the encoder writes 3
 *   bytes a pixel.
 * - omggif fills the RGBA of the screen from the first frame's indices (1 byte a pixel); our GIF
 *   encoder marks transparency (1 byte a pixel), gifwrap indexes the pixels (1) and compresses.
 */
const JPEG_BYTES_PER_BLOCK = 256 + 224 + 64;
const JPEG_BYTES_PER_PIXEL = 4 + 4 + 2;
const BMP_BYTES_PER_PALETTE_ENTRY = 80;
const BMP_ENCODE_BYTES_PER_PIXEL = 3;
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

function estimateCodecMemoryBytes(type: ImageType, inspection: ImageInspection, sourceBytes: number): number {
  const pixels = decodedPixels(inspection);
  switch (type) {
    case 'image/jpeg':
      return sourceBytes + inspection.jpegBlocks * JPEG_BYTES_PER_BLOCK + pixels * JPEG_BYTES_PER_PIXEL;
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
        pixels * BMP_ENCODE_BYTES_PER_PIXEL
      );
    case 'image/gif': {
      // Only the first frame is decoded; its indices, then the screen's RGBA.
      const first = inspection.frames[0]!;
      return sourceBytes + first.width * first.height + pixels * (RGBA_BYTES + GIF_ENCODE_BYTES_PER_PIXEL);
    }
  }
}

/**
 * Checks bytes declared as `contentType` before decoding: the type and its magic bytes, the size
 * of the image, of each frame and of all frames against the pixel limit, what the decoder would
 * read entry by entry, and the memory of the whole transform against the most there is. Throws an
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
  if (!inspection) return { type, inspection, memoryBytes: bytes.byteLength * UNREADABLE_SOURCE_FACTOR };

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

  if (op !== undefined) checkResultSize(type, op, params, decodedSize(inspection), maxPixels);
  const operationBytes = op === undefined ? 0 : operationWorkingBytes(op, decodedSize(inspection), params);
  const memoryBytes = estimateCodecMemoryBytes(type, inspection, bytes.byteLength) + operationBytes;
  if (memoryBytes > limits.maxMemoryBytes) {
    throw new ImageDecodeError(
      `${type} of ${inspection.width}x${inspection.height} pixels needs ${toMb(memoryBytes)} MB to transform${operationBytes > 0 ? ` with ${op}` : ''}, ` +
        `the worker has ${toMb(limits.maxMemoryBytes)} MB (WORKER_MEMORY_MB)`,
    );
  }
  return { type, inspection, memoryBytes };
}

/**
 * The result of `op` is held to the pixel limit too (a resize can make more pixels than its
 * source), and a resize's to its own bounds (a side kept from the aspect ratio can pass them).
 */
function checkResultSize(type: ImageType, op: Operation, params: OperationParams | undefined, source: Dimensions, maxPixels: number): void {
  const problem = resultSizeProblem(op, params, source);
  if (problem !== undefined) throw new ImageDecodeError(problem);
  const { width, height } = resultDimensions(op, params, source);
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      `${op} makes ${width}x${height} pixels of this ${type} of ${source.width}x${source.height}, more than the limit of ${maxPixels} pixels`,
    );
  }
}

/** The limit on width × height, also checked on what a decoder returns. */
export function checkPixelLimit(type: ImageType, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new ImageDecodeError(`${type} of ${width}x${height} pixels is larger than the limit of ${maxPixels} pixels`);
  }
}
