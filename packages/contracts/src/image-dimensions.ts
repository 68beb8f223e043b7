import type { ImageType } from './common';
import { readFirstIfdTag, readTiffHeader } from './tiff-directory';

// Byte reads of a plain Uint8Array, not Buffer methods: the helpers work the same in Node, in a
// browser and in a worker.
const u16be = (bytes: Uint8Array, at: number): number => (bytes[at]! << 8) | bytes[at + 1]!;
const u16le = (bytes: Uint8Array, at: number): number => bytes[at]! | (bytes[at + 1]! << 8);
const u32be = (bytes: Uint8Array, at: number): number => u16be(bytes, at) * 0x10000 + u16be(bytes, at + 2);
const u32le = (bytes: Uint8Array, at: number): number => u16le(bytes, at) + u16le(bytes, at + 2) * 0x10000;
const i32le = (bytes: Uint8Array, at: number): number => u32le(bytes, at) | 0;
const latin1 = (bytes: Uint8Array, from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));

export interface Dimensions {
  width: number;
  height: number;
}

/**
 * The size an image declares in its header, read before decoding so that a decompression bomb
 * is refused before its pixels are allocated, and compared with a result's: the size it is seen
 * at, so a JPEG's is upright (its EXIF orientation applied: 5–8 swap width and height), as its
 * result is. A TIFF's is its first page's, from its first directory, which may lie anywhere in
 * the file. Null when the header is too short (beyond the bytes given) or damaged to tell: the
 * decoder then reports the damage.
 */
export function readDeclaredDimensions(type: ImageType, bytes: Uint8Array): Dimensions | null {
  switch (type) {
    case 'image/png':
      // Signature (8 bytes), then the IHDR chunk: length, type, width, height.
      if (bytes.length < 24 || latin1(bytes, 12, 16) !== 'IHDR') return null;
      return { width: u32be(bytes, 16), height: u32be(bytes, 20) };
    case 'image/gif':
      // Logical screen size after "GIF89a"; every frame is drawn on it.
      return bytes.length >= 10 ? { width: u16le(bytes, 6), height: u16le(bytes, 8) } : null;
    case 'image/bmp': {
      if (bytes.length < 26) return null;
      const headerSize = u32le(bytes, 14);
      // OS/2 headers (12 bytes) store 16-bit sizes; the others 32-bit, height negative when top-down.
      if (headerSize === 12) return { width: u16le(bytes, 18), height: u16le(bytes, 20) };
      if (!BMP_INFO_HEADER_SIZES.has(headerSize)) return null;
      return { width: Math.abs(i32le(bytes, 18)), height: Math.abs(i32le(bytes, 22)) };
    }
    case 'image/jpeg': {
      const { size, orientation } = readJpegHeader(bytes);
      return size && orientation >= 5 ? { width: size.height, height: size.width } : size;
    }
    case 'image/tiff':
      return readTiffPageSize(bytes);
  }
}

/**
 * How a JPEG's pixels are to be turned to be seen upright, from the Orientation tag of its Exif
 * segment: 1 as stored; 2 mirrored; 3 turned a half; 4 flipped; 5 transposed (mirrored, then
 * turned a quarter anticlockwise); 6 turned a quarter clockwise; 7 transversed (mirrored, then
 * turned a quarter clockwise); 8 turned a quarter anticlockwise. 5–8 swap width and height.
 */
export type ExifOrientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/**
 * The orientation of a JPEG, from the first Exif segment before its frame header (where cameras
 * write it); 1 when there is none or its value is not one of 1–8.
 */
export function readJpegOrientation(bytes: Uint8Array): ExifOrientation {
  return readJpegHeader(bytes).orientation;
}

/** TIFF tags of the first page's size. */
const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_BITS_PER_SAMPLE = 258;

function readTiffPageSize(bytes: Uint8Array): Dimensions | null {
  const header = readTiffHeader(bytes);
  if (!header) return null;
  const width = readFirstIfdTag(bytes, header, TIFF_IMAGE_WIDTH);
  const height = readFirstIfdTag(bytes, header, TIFF_IMAGE_LENGTH);
  return width === null || height === null ? null : { width, height };
}

/** BITMAPINFOHEADER and its later versions (V2, V3, V4, V5). */
const BMP_INFO_HEADER_SIZES = new Set([40, 52, 56, 108, 124]);

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4, C8, CC. */
const JPEG_SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const JPEG_START_OF_SCAN = 0xda;
const JPEG_APP1 = 0xe1;
/** What an Exif APP1 segment starts with, before its TIFF structure. */
const EXIF_IDENTIFIER = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const EXIF_ORIENTATION_TAG = 0x0112;

interface JpegHeader {
  /** The first frame's size as stored; null when the bytes end or break before it. */
  size: Dimensions | null;
  orientation: ExifOrientation;
}

/**
 * Walks the marker segments after SOI up to the first start-of-frame, which holds the size; the
 * first Exif segment before it gives the orientation (read within that segment only).
 */
function readJpegHeader(bytes: Uint8Array): JpegHeader {
  let orientation: ExifOrientation = 1;
  let exifSeen = false;
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) break;
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (JPEG_SOF_MARKERS.has(marker)) {
      if (offset + 9 > bytes.length) break;
      return { size: { width: u16be(bytes, offset + 7), height: u16be(bytes, offset + 5) }, orientation };
    }
    if (marker === JPEG_START_OF_SCAN) break;
    const end = offset + 2 + u16be(bytes, offset + 2);
    const data = offset + 4;
    if (marker === JPEG_APP1 && !exifSeen && EXIF_IDENTIFIER.every((byte, i) => bytes[data + i] === byte)) {
      exifSeen = true;
      orientation = readExifOrientation(bytes, data + EXIF_IDENTIFIER.length, end);
    }
    offset = end;
  }
  return { size: null, orientation };
}

/** The Orientation tag of IFD0 in the TIFF structure at `start`, offsets bounded by the segment's `end`. */
function readExifOrientation(bytes: Uint8Array, start: number, end: number): ExifOrientation {
  const header = readTiffHeader(bytes, start, end);
  const value = header ? readFirstIfdTag(bytes, header, EXIF_ORIENTATION_TAG, end) : null;
  return value !== null && value >= 1 && value <= 8 ? (value as ExifOrientation) : 1;
}

/**
 * What decoding an image will allocate, read from its structure before a pixel is decoded: the
 * size of every frame (not only the size the header shows first) and the depth they decode to.
 */
export interface ImageInspection {
  /**
   * The size the header declares (GIF: the logical screen; others: the first frame), as stored:
   * a JPEG's EXIF orientation is not applied here (see readDeclaredDimensions).
   */
  width: number;
  height: number;
  /**
   * The frames a decoder will size a buffer for: each GIF image descriptor, each JPEG
   * start-of-frame up to the end-of-image marker, each PNG IHDR, the BMP header's size, a TIFF's
   * first page (the only one decoded). The first MAX_LISTED_FRAMES of them: a hostile file may
   * hold millions (the totals count them all).
   */
  frames: Dimensions[];
  frameCount: number;
  /**
   * width × height summed over every frame. A GIF's frames are drawn on its screen, one whole
   * screen for each (a decoder that composites them holds that): each counts as the screen, or
   * as itself when larger.
   */
  totalPixels: number;
  /** The frame with the most pixels. */
  largestFrame: Dimensions;
  /** The widest frame and the tallest: a long thin frame breaks a side limit with few pixels. */
  widestFrame: Dimensions;
  tallestFrame: Dimensions;
  /** Bits of each decoded sample: 16 for a 16-bit PNG or TIFF (decoded at twice the bytes), else 8. */
  bitsPerSample: 8 | 16;
  /**
   * Bytes of the decoded pixels at that depth, as RGBA: the image (GIF: the screen; others: the
   * largest frame, as a decoder that takes the last header would), and for a GIF each frame's
   * colour indices besides (one byte a pixel), which a decoder fills before drawing them.
   */
  decodedBytes: number;
  /** JPEG: 8×8 blocks of coefficients of all frames, padded to whole MCUs (held for a whole image). */
  jpegBlocks: number;
  /** PNG: bytes of the inflated scanlines, filter bytes and every interlace pass included. */
  pngScanlineBytes: number;
  /** PNG: whether it is interlaced (Adam7). */
  pngInterlaced: boolean;
  /** BMP: the colour table's entries by its header (a decoder reads them all). */
  bmpPaletteEntries: number;
}

export const MAX_LISTED_FRAMES = 1_000;

interface Frame extends Dimensions {
  /** What the frame counts in totalPixels, when not its own size (a GIF frame drawn on the screen). */
  drawnPixels?: number;
  bitsPerSample?: 8 | 16;
  jpegBlocks?: number;
  pngScanlineBytes?: number;
  pngInterlaced?: boolean;
  bmpPaletteEntries?: number;
}

/** The frames a scan met, summed as they come: nothing kept per frame past the listed ones. */
class FrameTally {
  readonly listed: Dimensions[] = [];
  count = 0;
  totalPixels = 0;
  /** The frames' own pixels, summed. */
  framePixels = 0;
  largest: Dimensions = { width: 0, height: 0 };
  widest: Dimensions = { width: 0, height: 0 };
  tallest: Dimensions = { width: 0, height: 0 };
  bitsPerSample: 8 | 16 = 8;
  jpegBlocks = 0;
  pngScanlineBytes = 0;
  pngInterlaced = false;
  bmpPaletteEntries = 0;

  add(frame: Frame): void {
    const { width, height } = frame;
    if (this.count < MAX_LISTED_FRAMES) this.listed.push({ width, height });
    this.count += 1;
    this.totalPixels += frame.drawnPixels ?? pixels(frame);
    this.framePixels += pixels(frame);
    if (this.count === 1 || pixels(frame) > pixels(this.largest)) this.largest = { width, height };
    if (this.count === 1 || width > this.widest.width) this.widest = { width, height };
    if (this.count === 1 || height > this.tallest.height) this.tallest = { width, height };
    if (frame.bitsPerSample === 16) this.bitsPerSample = 16;
    this.jpegBlocks += frame.jpegBlocks ?? 0;
    this.pngScanlineBytes += frame.pngScanlineBytes ?? 0;
    this.pngInterlaced ||= frame.pngInterlaced ?? false;
    this.bmpPaletteEntries += frame.bmpPaletteEntries ?? 0;
  }
}

/**
 * Walks the whole file (GIF blocks, JPEG segments and entropy-coded data, PNG chunks) once,
 * without allocating anything in proportion to the image, and never throws. Null when the file
 * is too short or damaged to show one frame: the decoder then reports the damage. A file cut short
 * after a frame gives the frames seen so far.
 */
export function inspectImage(type: ImageType, bytes: Uint8Array): ImageInspection | null {
  const tally = new FrameTally();
  let canvas: Dimensions | undefined;
  switch (type) {
    case 'image/png':
      scanPngHeaders(bytes, tally);
      break;
    case 'image/gif':
      canvas = scanGifFrames(bytes, tally) ?? undefined;
      break;
    case 'image/jpeg':
      scanJpegFrames(bytes, tally);
      break;
    case 'image/bmp': {
      const frame = readBmpHeader(bytes);
      if (frame) tally.add(frame);
      break;
    }
    case 'image/tiff': {
      const page = readTiffPage(bytes);
      if (page) tally.add(page);
      break;
    }
  }
  if (tally.count === 0) return null;
  const decoded = canvas ?? tally.largest;
  canvas ??= tally.listed[0]!;
  const frameIndexBytes = type === 'image/gif' ? tally.framePixels : 0;
  return {
    width: canvas.width,
    height: canvas.height,
    frames: tally.listed,
    frameCount: tally.count,
    totalPixels: tally.totalPixels,
    largestFrame: tally.largest,
    widestFrame: tally.widest,
    tallestFrame: tally.tallest,
    bitsPerSample: tally.bitsPerSample,
    decodedBytes: pixels(decoded) * 4 * (tally.bitsPerSample / 8) + frameIndexBytes,
    jpegBlocks: tally.jpegBlocks,
    pngScanlineBytes: tally.pngScanlineBytes,
    pngInterlaced: tally.pngInterlaced,
    bmpPaletteEntries: tally.bmpPaletteEntries,
  };
}

const pixels = ({ width, height }: Dimensions): number => width * height;

/** Samples a pixel of each PNG colour type: grey, RGB, palette, grey + alpha, RGBA. */
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Adam7: the first column and row of each pass, and the steps between its columns and rows. */
const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Inflated bytes of a PNG's scanlines: one filter byte per row, then its packed samples. */
function pngScanlineBytes(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7_PASSES.reduce((total, [x0, y0, dx, dy]) => total + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
}

/**
 * Every IHDR chunk up to IEND. A decoder such as pngjs sizes its buffers by the last one it
 * meets, so a second IHDR must count as much as the first.
 */
function scanPngHeaders(bytes: Uint8Array, tally: FrameTally): void {
  let offset = 8; // the signature
  while (offset + 8 <= bytes.length) {
    const length = u32be(bytes, offset);
    const type = latin1(bytes, offset + 4, offset + 8);
    const data = offset + 8;
    if (type === 'IHDR' && length >= 13 && data + 13 <= bytes.length) {
      const width = u32be(bytes, data);
      const height = u32be(bytes, data + 4);
      const depth = bytes[data + 8]!;
      const channels = PNG_CHANNELS[bytes[data + 9]!] ?? 4;
      const interlaced = bytes[data + 12] === 1;
      tally.add({
        width,
        height,
        bitsPerSample: depth === 16 ? 16 : 8,
        pngScanlineBytes: pngScanlineBytes(width, height, channels * depth, interlaced),
        pngInterlaced: interlaced,
      });
    }
    if (type === 'IEND') break;
    offset = data + length + 4; // data, then the CRC
  }
}

/** Skips GIF data sub-blocks (a length byte, that many bytes, … a zero length); -1 past the end. */
function skipGifSubBlocks(bytes: Uint8Array, offset: number): number {
  while (offset < bytes.length) {
    const size = bytes[offset]!;
    offset += 1 + size;
    if (size === 0) return offset;
  }
  return -1;
}

/** A colour table's bytes, from the packed field that announces it (flag in bit 7, size in bits 0–2). */
const gifColourTableBytes = (packed: number): number => (packed & 0x80 ? 3 * (2 << (packed & 0x07)) : 0);

/** The logical screen and every image descriptor, extensions and LZW data skipped. */
function scanGifFrames(bytes: Uint8Array, tally: FrameTally): Dimensions | null {
  if (bytes.length < 13) return null;
  const screen = { width: u16le(bytes, 6), height: u16le(bytes, 8) };
  let offset = 13 + gifColourTableBytes(bytes[10]!);
  while (offset >= 0 && offset < bytes.length) {
    const introducer = bytes[offset]!;
    if (introducer === 0x2c) {
      if (offset + 10 > bytes.length) break;
      const frame = { width: u16le(bytes, offset + 5), height: u16le(bytes, offset + 7) };
      tally.add({ ...frame, drawnPixels: Math.max(pixels(frame), pixels(screen)) });
      // The descriptor, its colour table, the LZW minimum code size, then the data.
      offset = skipGifSubBlocks(bytes, offset + 10 + gifColourTableBytes(bytes[offset + 9]!) + 1);
    } else if (introducer === 0x21) {
      offset = skipGifSubBlocks(bytes, offset + 2); // introducer and label
    } else {
      break; // the trailer (0x3B), or bytes a decoder stops at
    }
  }
  return screen;
}

/** Markers without a length: TEM, the restart markers RST0–7, SOI and EOI. */
const isStandaloneJpegMarker = (marker: number): boolean => marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9);
const JPEG_END_OF_IMAGE = 0xd9;

/** A JPEG frame header: its size and its components' blocks, padded to whole MCUs. */
function readJpegFrame(bytes: Uint8Array, segment: number, end: number): Frame | null {
  if (segment + 6 > end) return null;
  const height = u16be(bytes, segment + 1);
  const width = u16be(bytes, segment + 3);
  const count = bytes[segment + 5]!;
  if (segment + 6 + count * 3 > end) return { width, height, jpegBlocks: 0 };
  let maxH = 1;
  let maxV = 1;
  for (let i = 0; i < count; i++) {
    const sampling = bytes[segment + 7 + i * 3]!;
    maxH = Math.max(maxH, sampling >> 4);
    maxV = Math.max(maxV, sampling & 0x0f);
  }
  const mcusPerLine = Math.ceil(width / 8 / maxH);
  const mcusPerColumn = Math.ceil(height / 8 / maxV);
  let jpegBlocks = 0;
  for (let i = 0; i < count; i++) {
    const sampling = bytes[segment + 7 + i * 3]!;
    jpegBlocks += mcusPerLine * (sampling >> 4) * mcusPerColumn * (sampling & 0x0f);
  }
  return { width, height, jpegBlocks };
}

/**
 * Every start-of-frame up to the end-of-image marker (where decoders stop: pictures appended
 * after it, as in MPO files, are never decoded), walking the segments by their lengths and the
 * entropy-coded data after each start-of-scan byte by byte.
 */
function scanJpegFrames(bytes: Uint8Array, tally: FrameTally): void {
  let offset = 2; // SOI
  while (offset + 1 < bytes.length) {
    if (bytes[offset] !== 0xff) {
      // Entropy-coded data, or bytes between segments that a tolerant decoder skips: the typed
      // array's native indexOf finds the next marker (25 MB in tens of milliseconds, which the
      // frontend spends on its event loop at upload).
      offset = bytes.indexOf(0xff, offset + 1);
      if (offset < 0) break;
      continue;
    }
    const marker = bytes[offset + 1]!;
    if (marker === 0xff || marker === 0x00) {
      offset += marker === 0xff ? 1 : 2; // a fill byte, or a stuffed 0xFF in entropy-coded data
      continue;
    }
    if (marker === JPEG_END_OF_IMAGE) break;
    if (isStandaloneJpegMarker(marker)) {
      offset += 2;
      continue;
    }
    if (offset + 4 > bytes.length) break;
    const length = u16be(bytes, offset + 2);
    const segment = offset + 4;
    const end = Math.min(bytes.length, offset + 2 + length);
    if (JPEG_SOF_MARKERS.has(marker)) {
      const frame = readJpegFrame(bytes, segment, end);
      if (frame) tally.add(frame);
    }
    offset += 2 + Math.max(length, 2);
  }
}

/** The BMP header's size, bit depth and colour table. */
function readBmpHeader(bytes: Uint8Array): Frame | null {
  if (bytes.length < 26) return null;
  const headerSize = u32le(bytes, 14);
  if (headerSize === 12) {
    const bitCount = u16le(bytes, 24);
    return { width: u16le(bytes, 18), height: u16le(bytes, 20), bmpPaletteEntries: bitCount <= 8 ? 2 ** bitCount : 0 };
  }
  if (!BMP_INFO_HEADER_SIZES.has(headerSize) || bytes.length < 50) return null;
  const bitCount = u16le(bytes, 28);
  const colours = u32le(bytes, 46);
  return {
    width: Math.abs(i32le(bytes, 18)),
    height: Math.abs(i32le(bytes, 22)),
    bmpPaletteEntries: colours > 0 ? colours : bitCount <= 8 ? 2 ** bitCount : 0,
  };
}

/** A TIFF's first page: its size and the depth of its samples (16 bits decode at twice the bytes). */
function readTiffPage(bytes: Uint8Array): Frame | null {
  const size = readTiffPageSize(bytes);
  if (!size) return null;
  const header = readTiffHeader(bytes)!;
  return { ...size, bitsPerSample: readFirstIfdTag(bytes, header, TIFF_BITS_PER_SAMPLE) === 16 ? 16 : 8 };
}
