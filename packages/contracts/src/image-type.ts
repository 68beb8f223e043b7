import type { ImageType } from './common';

/**
 * The real type of an image from its first bytes (magic numbers), never from a name or header.
 * Needs at most the first 14 bytes; returns null for anything else. A TIFF is `II*\0`
 * (little-endian) or `MM\0*` (big-endian); BigTIFF (`II+\0`, 64-bit offsets) is not supported
 * and is not recognised.
 */
export function detectImageType(head: Uint8Array): ImageType | null {
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38) && (head[4] === 0x37 || head[4] === 0x39) && head[5] === 0x61) return 'image/gif';
  if (starts(0x42, 0x4d) && head.length >= 14) return 'image/bmp';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'image/tiff';
  return null;
}
