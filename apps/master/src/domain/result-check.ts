import { resultDimensions, type Dimensions, type ImageType, type Operation, type OperationParams } from '@pixelmill/contracts';

/** Room for headers, palettes, chunk and block framing on top of the pixels. */
const CONTAINER_OVERHEAD_BYTES = 64 * 1024;

/** MAX_IMAGE_PIXELS when none is configured: the workers' and the frontend's default. */
export const DEFAULT_MAX_IMAGE_PIXELS = 50_000_000;

/**
 * An animated GIF frame's bytes besides its codes: a local palette of 256 colours, its
 * descriptor and graphic control extension, the code size and the terminator.
 */
const GIF_FRAME_OVERHEAD_BYTES = 3 * 256 + 10 + 8 + 2;
/** The fewest bytes a frame takes in a GIF: its descriptor, code size and terminator. */
const MIN_GIF_FRAME_BYTES = 12;

/**
 * The most bytes an honest result of `width`×`height` pixels can take: 4 bytes a pixel (RGBA;
 * PNG adds a filter byte a row and deflate's stored blocks about 0.01 %, BMP pads rows, TIFF is
 * written uncompressed, GIF's codes are at most 12 bits and JPEG stays well under), plus the
 * container. An animated GIF holds `frames` pictures of that size, each of codes of at most 12
 * bits a pixel (a clear code every few thousand, in sub-blocks of 255 bytes) and its own palette.
 */
export function maxResultBytes({ width, height }: Dimensions, frames = 1): number {
  const still = Math.ceil(width * height * 4 * 1.001) + height * 4 + CONTAINER_OVERHEAD_BYTES;
  if (frames <= 1) return still;
  const frameBytes = Math.ceil(width * height * 1.5 * 1.001 * (256 / 255)) + GIF_FRAME_OVERHEAD_BYTES;
  return Math.max(still, frames * frameBytes + CONTAINER_OVERHEAD_BYTES);
}

/**
 * The most frames a GIF result of `size` can have: as many as its source. Master reads only a
 * source's head, so it cannot count them; it bounds them instead by what the worker allows, every
 * frame of the result that size and all of them within `maxPixels` together (MAX_IMAGE_PIXELS),
 * and by the source's bytes (a frame takes 12 at least; unknown: 0).
 */
export function maxGifFrames(size: Dimensions, sourceBytes: number, maxPixels: number): number {
  const byPixels = Math.floor(maxPixels / Math.max(1, size.width * size.height));
  const byBytes = sourceBytes > 0 ? Math.floor(sourceBytes / MIN_GIF_FRAME_BYTES) : Infinity;
  return Math.max(1, Math.min(byPixels, byBytes));
}

/** The bound of maxResultBytes for a result of this task's type: a GIF may be animated. */
export function resultBytesBound(
  size: Dimensions,
  task: { contentType: ImageType; sourceBytes?: number },
  maxPixels = DEFAULT_MAX_IMAGE_PIXELS,
): number {
  return maxResultBytes(size, task.contentType === 'image/gif' ? maxGifFrames(size, task.sourceBytes ?? 0, maxPixels) : 1);
}

/** What a task says of its result: its operation, and the source's declared size when it could be read. */
export interface ResultExpectation {
  contentType: ImageType;
  op: Operation;
  params: OperationParams | null;
  width: number | null;
  height: number | null;
}

/**
 * The size the task's result must have: the one its operation makes of the source's (a quarter
 * turn swaps width and height, resize makes the size asked for); undefined when the source's
 * header could not be read.
 */
export function expectedResultDimensions(task: ResultExpectation): Dimensions | undefined {
  if (task.width === null || task.height === null) return undefined;
  return resultDimensions(task.op, task.params, { width: task.width, height: task.height });
}

/**
 * Why a stored result cannot be the task's, or undefined when it can be: it must be of the
 * task's type, say in its header that it has the size the operation makes of the source's (a
 * JPEG's source declares its upright size, as the result does), and be no larger than that many
 * pixels can honestly take (see resultBytesBound). `stored` is what its head says (the type
 * by magic bytes, the declared dimensions) and its size, from storage's receipt or read back.
 */
export function resultProblem(
  stored: { contentType: ImageType | null; width: number | null; height: number | null; size: number },
  expected: ResultExpectation & { sourceBytes?: number },
  maxPixels = DEFAULT_MAX_IMAGE_PIXELS,
): string | undefined {
  const { contentType: type, size } = stored;
  if (type !== expected.contentType) {
    return `the stored result is ${type ? `a ${type}` : 'not an image of a supported type'}, not a ${expected.contentType}`;
  }
  const declared = stored.width !== null && stored.height !== null ? { width: stored.width, height: stored.height } : undefined;
  if (!declared || declared.width < 1 || declared.height < 1) return `the stored result's ${type} header cannot be read`;
  const result = expectedResultDimensions(expected);
  if (result && (declared.width !== result.width || declared.height !== result.height)) {
    return (
      `the stored result is ${declared.width}×${declared.height} pixels, not the ${result.width}×${result.height} ` +
      `that ${expected.op} makes of the ${expected.width}×${expected.height} source`
    );
  }
  // A GIF result's frames are bounded by the result's size: the worker holds all of them, each
  // that size, within the pixel limit.
  const bound = resultBytesBound(result ?? declared, expected, maxPixels);
  if (size > bound) return `the stored result has ${size} bytes, more than ${bound} for its pixels`;
  return undefined;
}
