// The TIFF structure, as far as the header checks need it: a TIFF file's header and first
// directory (IFD), and the same structure inside a JPEG's Exif segment. Every read is bounded by
// the bytes given (an offset outside them is "not known", never followed), and only the first
// directory is read: no chain of directories, so none can loop.

/** The header of a TIFF structure that starts at `start` in the bytes. */
export interface TiffHeader {
  start: number;
  littleEndian: boolean;
  /** Offset of the first directory, from `start`. */
  firstIfd: number;
}

const TIFF_MAGIC = 42;
/** A directory entry: tag, type, count (2 + 2 + 4 bytes), then the value or its offset (4). */
const ENTRY_BYTES = 12;
const TYPE_SHORT = 3;
const TYPE_LONG = 4;

function reader(bytes: Uint8Array, littleEndian: boolean) {
  const u16 = (at: number): number => (littleEndian ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!);
  const u32 = (at: number): number => (littleEndian ? u16(at) + u16(at + 2) * 0x10000 : u16(at) * 0x10000 + u16(at + 2));
  return { u16, u32 };
}

/**
 * `II*\0` (little-endian) or `MM\0*` (big-endian) at `start`, and the first directory's offset.
 * Null for anything else, BigTIFF (`II+\0`, 64-bit offsets) included. `end` bounds the structure
 * (an Exif segment's end); the bytes' length by default.
 */
export function readTiffHeader(bytes: Uint8Array, start = 0, end = bytes.length): TiffHeader | null {
  if (start + 8 > Math.min(end, bytes.length)) return null;
  const order = bytes[start];
  if (order !== bytes[start + 1] || (order !== 0x49 && order !== 0x4d)) return null;
  const littleEndian = order === 0x49;
  const { u16, u32 } = reader(bytes, littleEndian);
  if (u16(start + 2) !== TIFF_MAGIC) return null;
  return { start, littleEndian, firstIfd: u32(start + 4) };
}

/**
 * The first value of `tag` in the header's first directory, when it is a SHORT or a LONG. Null
 * when the directory lies outside the bytes (past `end`: only the file's head is known, or it is
 * damaged) or the tag is missing or of another type.
 */
export function readFirstIfdTag(bytes: Uint8Array, header: TiffHeader, tag: number, end = bytes.length): number | null {
  const limit = Math.min(end, bytes.length);
  const { u16, u32 } = reader(bytes, header.littleEndian);
  const ifd = header.start + header.firstIfd;
  if (ifd + 2 > limit) return null;
  const count = u16(ifd);
  if (ifd + 2 + count * ENTRY_BYTES > limit) return null;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * ENTRY_BYTES;
    if (u16(entry) !== tag) continue;
    const type = u16(entry + 2);
    const values = u32(entry + 4);
    const size = type === TYPE_SHORT ? 2 : type === TYPE_LONG ? 4 : 0;
    if (size === 0 || values < 1) return null;
    // Values that fit in the entry's 4 bytes are there, first value first; others at an offset.
    const at = values * size <= 4 ? entry + 8 : header.start + u32(entry + 8);
    if (at + size > limit) return null;
    return size === 2 ? u16(at) : u32(at);
  }
  return null;
}
