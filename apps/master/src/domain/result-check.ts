import type { Dimensions, ImageType } from '@pixelmill/contracts';

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

/**
 * Why a stored result cannot be the task's, or undefined when it can be: it must be of the
 * task's type, say in its header that it has the source's size (the operations keep it), and
 * be no larger than that many pixels can honestly take. `stored` is what its head says (the type
 * by magic bytes, the declared dimensions) and its size, from storage's receipt or read back.
 */
export function resultProblem(
  stored: { contentType: ImageType | null; width: number | null; height: number | null; size: number },
  expected: { contentType: ImageType; width: number | null; height: number | null },
): string | undefined {
  const { contentType: type, size } = stored;
  if (type !== expected.contentType) {
    return `the stored result is ${type ? `a ${type}` : 'not an image of a supported type'}, not a ${expected.contentType}`;
  }
  const declared = stored.width !== null && stored.height !== null ? { width: stored.width, height: stored.height } : undefined;
  if (!declared || declared.width < 1 || declared.height < 1) return `the stored result's ${type} header cannot be read`;
  const source = expected.width !== null && expected.height !== null ? { width: expected.width, height: expected.height } : undefined;
  if (source && (declared.width !== source.width || declared.height !== source.height)) {
    return `the stored result is ${declared.width}×${declared.height} pixels, the source ${source.width}×${source.height}`;
  }
  const bound = maxResultBytes(source ?? declared);
  if (size > bound) return `the stored result has ${size} bytes, more than ${bound} for its pixels`;
  return undefined;
}
