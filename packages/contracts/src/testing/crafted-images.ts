import type { Dimensions } from '../image-dimensions';
import type { ExifOrientation } from '../image-dimensions';
import { concat, crc32, latin1, setU16be, setU16le, setU32be, setU32le, u16be, zlibCompress } from './bytes';

// Images made byte by byte, as an attacker would: sizes a decoder allocates for that the first
// header does not show. Shared by the tests of every service that judges an image before decoding.
// Plain Uint8Arrays in and out (a Node Buffer is one), so they work outside Node too.

const GIF_HEADER = latin1('GIF89a');
/** LZW data of a frame: minimum code size 2, one sub-block (clear code, end code), terminator. */
const EMPTY_LZW = Uint8Array.of(2, 1, 0x2c, 0);

/** A logical screen descriptor with a global palette of 2 colours (black, white). */
function gifScreen(width: number, height: number): Uint8Array {
  const screen = Uint8Array.of(0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255);
  setU16le(screen, 0, width);
  setU16le(screen, 2, height);
  return screen;
}

function gifImageDescriptor(width: number, height: number): Uint8Array {
  const descriptor = Uint8Array.of(0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  setU16le(descriptor, 5, width);
  setU16le(descriptor, 7, height);
  return descriptor;
}

/** The 35 bytes of issue 8: a 1×1 screen whose one frame is 65535×65535. */
export function gifWithHugeFrame(): Uint8Array {
  return concat(GIF_HEADER, gifScreen(1, 1), gifImageDescriptor(0xffff, 0xffff), Uint8Array.of(2, 2, 0x4c, 0x01, 0), Uint8Array.of(0x3b));
}

/** A screen of `width`×`height` and `count` frames as large, each after a graphic control extension. */
export function gifWithFrames(count: number, width: number, height: number): Uint8Array {
  return gifWithFrameSizes({ width, height }, Array<Dimensions>(count).fill({ width, height }));
}

/** A screen of `screen`'s size and a frame of each size in `frames`, each after a graphic control extension. */
export function gifWithFrameSizes(screen: Dimensions, frames: Dimensions[]): Uint8Array {
  const graphicControl = Uint8Array.of(0x21, 0xf9, 4, 0, 10, 0, 0, 0);
  const comment = concat(Uint8Array.of(0x21, 0xfe, 5), latin1('hello'), Uint8Array.of(0));
  const blocks = frames.map(({ width, height }) => concat(graphicControl, gifImageDescriptor(width, height), EMPTY_LZW));
  return concat(GIF_HEADER, gifScreen(screen.width, screen.height), comment, ...blocks, Uint8Array.of(0x3b));
}

/** A baseline start-of-frame segment of three components at full resolution (4:4:4). */
function jpegStartOfFrame(width: number, height: number): Uint8Array {
  const sof = Uint8Array.of(0xff, 0xc0, 0, 17, 8, 0, 0, 0, 0, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1);
  setU16be(sof, 5, height);
  setU16be(sof, 7, width);
  return sof;
}

/** `jpeg` with a second frame header of `width`×`height` after its scan, before its end marker. */
export function jpegWithSecondFrame(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const end = jpeg.length - 2; // FF D9
  return concat(jpeg.subarray(0, end), jpegStartOfFrame(width, height), jpeg.subarray(end));
}

/** `jpeg` with the size in its (first) frame header changed: a decoder sizes its blocks by it. */
export function jpegDeclaring(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const out = Uint8Array.from(jpeg);
  for (let offset = 2; offset + 9 <= out.length; offset += 2 + u16be(out, offset + 2)) {
    if (out[offset + 1] === 0xc0) {
      setU16be(out, offset + 5, height);
      setU16be(out, offset + 7, width);
      return out;
    }
  }
  throw new Error('no baseline frame header in this JPEG');
}

/** A PNG chunk: its length, type, data and CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const chunk = new Uint8Array(8 + data.length + 4);
  setU32be(chunk, 0, data.length);
  chunk.set(latin1(type), 4);
  chunk.set(data, 8);
  setU32be(chunk, 8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  return chunk;
}

/** A grey RGBA PNG of `depth` bits a sample (8 or 16), not interlaced: valid, and tiny once deflated. */
export function rgbaPng(width: number, height: number, depth: 8 | 16): Uint8Array {
  const ihdr = new Uint8Array(13);
  setU32be(ihdr, 0, width);
  setU32be(ihdr, 4, height);
  ihdr[8] = depth;
  ihdr[9] = 6;
  const rowBytes = 1 + width * 4 * (depth / 8);
  const rows = new Uint8Array(rowBytes * height).fill(0x80);
  for (let y = 0; y < height; y++) rows[y * rowBytes] = 0; // filter: none
  return concat(
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlibCompress(rows)),
    pngChunk('IEND', new Uint8Array(0)),
  );
}

/**
 * `size` bytes that start as a PNG whose header declares `width`×`height`, then junk (the same
 * for the same arguments): what a check of the head sees, nothing that decodes.
 */
export function pngDeclaring(width: number, height: number, size: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  setU32be(ihdr, 0, width);
  setU32be(ihdr, 4, height);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const head = concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), pngChunk('IHDR', ihdr));
  const bytes = new Uint8Array(Math.max(size, head.length));
  bytes.set(head);
  let state = (width * 31 + height * 17 + size) >>> 0 || 1;
  for (let at = head.length; at < bytes.length; at++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[at] = state & 0xff;
  }
  return bytes;
}

/** A TIFF directory entry: its tag and values, SHORTs (16 bits) or LONGs (32 bits). */
export interface TiffEntry {
  tag: number;
  type: 'short' | 'long';
  values: number[];
}

export interface CraftedTiffOptions {
  /** `II` (the default) or `MM`. */
  littleEndian?: boolean;
  /** The strips of pixel data; their offsets and byte counts (tags 273, 279) are added. */
  strips?: Uint8Array[];
  /** The directory after the strips, as many writers put it, rather than before them. */
  directoryLast?: boolean;
  /** Zero bytes between the header and what follows it: puts the rest that much further on. */
  padding?: number;
}

/** A TIFF of one directory with `entries` (sorted by tag, as TIFF wants) and `strips`. */
export function craftTiff(entries: TiffEntry[], options: CraftedTiffOptions = {}): Uint8Array {
  const { littleEndian = true, strips = [], directoryLast = false, padding = 0 } = options;
  const all = entries.map((entry) => ({ ...entry, values: [...entry.values] }));
  if (strips.length > 0) {
    all.push({ tag: 273, type: 'long', values: strips.map(() => 0) }, { tag: 279, type: 'long', values: strips.map((s) => s.length) });
  }
  all.sort((a, b) => a.tag - b.tag);
  const valueBytes = (entry: TiffEntry): number => entry.values.length * (entry.type === 'short' ? 2 : 4);
  const overflowBytes = all.reduce((total, entry) => total + (valueBytes(entry) > 4 ? valueBytes(entry) : 0), 0);
  const directoryBytes = 2 + all.length * 12 + 4;
  const stripBytes = strips.reduce((total, strip) => total + strip.length, 0);
  const ifdAt = 8 + padding + (directoryLast ? stripBytes : 0);
  let stripAt = directoryLast ? 8 + padding : ifdAt + directoryBytes + overflowBytes;
  const offsets = all.find((entry) => entry.tag === 273);
  if (offsets && strips.length > 0) {
    offsets.values = strips.map((strip) => {
      const at = stripAt;
      stripAt += strip.length;
      return at;
    });
  }

  const out = new Uint8Array(8 + padding + directoryBytes + overflowBytes + stripBytes);
  const put16 = littleEndian ? setU16le : setU16be;
  const put32 = littleEndian ? setU32le : setU32be;
  out.set(littleEndian ? latin1('II') : latin1('MM'));
  put16(out, 2, 42);
  put32(out, 4, ifdAt);
  put16(out, ifdAt, all.length);
  let overflowAt = ifdAt + directoryBytes;
  all.forEach((entry, i) => {
    const at = ifdAt + 2 + i * 12;
    put16(out, at, entry.tag);
    put16(out, at + 2, entry.type === 'short' ? 3 : 4);
    put32(out, at + 4, entry.values.length);
    let valueAt = at + 8;
    if (valueBytes(entry) > 4) {
      put32(out, at + 8, overflowAt);
      valueAt = overflowAt;
      overflowAt += valueBytes(entry);
    }
    entry.values.forEach((value, j) => (entry.type === 'short' ? put16(out, valueAt + j * 2, value) : put32(out, valueAt + j * 4, value)));
  });
  let at = directoryLast ? 8 + padding : ifdAt + directoryBytes + overflowBytes;
  for (const strip of strips) {
    out.set(strip, at);
    at += strip.length;
  }
  return out;
}

/**
 * A TIFF whose first page declares `width`×`height` RGB pixels of 8 bits, uncompressed, with one
 * strip of `stripBytes` bytes (none by default): what a check of the header sees, a bomb when
 * the size is large and the strip small.
 */
export function tiffDeclaring(width: number, height: number, options: CraftedTiffOptions & { stripBytes?: number } = {}): Uint8Array {
  const { stripBytes = 0, ...rest } = options;
  const entries: TiffEntry[] = [
    { tag: 256, type: 'long', values: [width] },
    { tag: 257, type: 'long', values: [height] },
    { tag: 258, type: 'short', values: [8, 8, 8] },
    { tag: 259, type: 'short', values: [1] },
    { tag: 262, type: 'short', values: [2] },
    { tag: 277, type: 'short', values: [3] },
    { tag: 278, type: 'long', values: [height] },
  ];
  return craftTiff(entries, { ...rest, strips: stripBytes > 0 ? [new Uint8Array(stripBytes).fill(0x80)] : [] });
}

/**
 * `jpeg` with an Exif segment (APP1) right after its start marker whose first directory holds
 * the Orientation tag (0x0112) at `orientation`, in either byte order.
 */
export function jpegWithOrientation(jpeg: Uint8Array, orientation: ExifOrientation, littleEndian = false): Uint8Array {
  const tiff = craftTiff([{ tag: 0x0112, type: 'short', values: [orientation] }], { littleEndian });
  const segment = concat(Uint8Array.of(0xff, 0xe1, 0, 0), latin1('Exif\0\0'), tiff);
  setU16be(segment, 2, segment.length - 2);
  return concat(jpeg.subarray(0, 2), segment, jpeg.subarray(2));
}
