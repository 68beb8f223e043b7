import { resultDimensions, type Dimensions, type ImageType, type Operation, type OperationParams } from '@pixelmill/contracts';

/** Room for headers, palettes, chunk and block framing on top of the pixels. */
const CONTAINER_OVERHEAD_BYTES = 64 * 1024;

/**
 * The most bytes an honest result of `width`×`height` pixels can take: 4 bytes a pixel (RGBA;
 * PNG adds a filter byte a row and deflate's stored blocks about 0.01 %, BMP pads rows, GIF's
 * codes are at most 12 bits and JPEG stays well under), plus the container.
 */
export function maxResultBytes({ width, height }: Dimensions): number {
  return Math.ceil(width * height * 4 * 1.001) + height * 4 + CONTAINER_OVERHEAD_BYTES;
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
 * task's type, say in its header that it has the size the operation makes of the source's, and
 * be no larger than that many pixels can honestly take. `stored` is what its head says (the type
 * by magic bytes, the declared dimensions) and its size, from storage's receipt or read back.
 */
export function resultProblem(
  stored: { contentType: ImageType | null; width: number | null; height: number | null; size: number },
  expected: ResultExpectation,
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
  const bound = maxResultBytes(result ?? declared);
  if (size > bound) return `the stored result has ${size} bytes, more than ${bound} for its pixels`;
  return undefined;
}
