import { inflateRawSync } from 'node:zlib';
import * as UTIF from 'utif2';
import { hasTransparency, packRgb, type RgbaBitmap } from './bitmap';
import { TRUNCATED_OR_CORRUPT, UNSUPPORTED } from './decoder-errors';
import { ImageDecodeError } from './work-errors';

// TIFF through utif (jimp's TIFF library; @jimp/js-tiff is a thin wrapper over it). utif is
// handed only what was read and checked here, never the file's own directories: its directory
// parser loops on entry counts and directory chains as the file states them (four billion values,
// a directory that points to itself), and its strip decoders run as long as their input lasts
// whatever they write. So the first directory is read here with every offset bounded by the file,
// the variant is checked against what utif decodes correctly, every strip's compressed data is
// checked to decode within its strip (a pass that counts, allocating nothing), and only then are
// the strips decoded. Only the first page of a multi-page TIFF is decoded, and the result is
// that page alone.

/** One entry of the first directory: its type, how many values, and where they are. */
interface DirectoryEntry {
  type: number;
  count: number;
  valueAt: number;
}

/** The first page of a TIFF, read and checked: what the decoder is given. */
export interface TiffPage {
  littleEndian: boolean;
  width: number;
  height: number;
  bitsPerSample: number;
  samplesPerPixel: number;
  compression: number;
  photometric: number;
  predictor: number;
  rowsPerStrip: number;
  strips: number;
  stripOffsets: DirectoryEntry;
  stripByteCounts: DirectoryEntry;
  colorMap?: number[];
  extraSamples?: number[];
  /** Bytes of the page's samples uncompressed: the decoder's first buffer. */
  sampleBytes: number;
  /** Bytes of one strip's samples uncompressed: what any strip may decode to. */
  stripBytes: number;
}

const Compression = { None: 1, Lzw: 5, Deflate: 8, PackBits: 32773, AdobeDeflate: 32946 } as const;
const SUPPORTED_COMPRESSIONS = new Set<number>(Object.values(Compression));
const Photometric = { WhiteIsZero: 0, BlackIsZero: 1, Rgb: 2, Palette: 3 } as const;

/**
 * The depths utif turns into RGBA correctly, by photometric interpretation (its toRGBA8 leaves
 * other depths black, or throws): [bits a sample, samples a pixel].
 */
const SUPPORTED_LAYOUTS: Readonly<Record<number, ReadonlyArray<readonly [number, number]>>> = {
  [Photometric.WhiteIsZero]: [
    [1, 1],
    [4, 1],
    [8, 1],
    [16, 1],
  ],
  [Photometric.BlackIsZero]: [
    [1, 1],
    [2, 1],
    [8, 1],
    [16, 1],
  ],
  [Photometric.Rgb]: [
    [8, 3],
    [8, 4],
    [16, 3],
    [16, 4],
  ],
  [Photometric.Palette]: [
    [1, 1],
    [2, 1],
    [4, 1],
    [8, 1],
  ],
};

const Tag = {
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  PlanarConfiguration: 284,
  Predictor: 317,
  ColorMap: 320,
  TileWidth: 322,
  TileOffsets: 324,
  ExtraSamples: 338,
  SampleFormat: 339,
} as const;

/** Bytes of a value of each TIFF type (BYTE, ASCII, SHORT, LONG, RATIONAL, … IFD8). */
const TYPE_BYTES: Readonly<Record<number, number>> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};
const TYPE_BYTE = 1;
const TYPE_SHORT = 3;
const TYPE_LONG = 4;

const corrupt = (detail: string) => new ImageDecodeError(`could not decode image/tiff: ${TRUNCATED_OR_CORRUPT} (${detail})`);
const unsupported = (detail: string) => new ImageDecodeError(`could not decode image/tiff: ${UNSUPPORTED} (${detail})`);

class Directory {
  private readonly u16: (at: number) => number;
  private readonly u32: (at: number) => number;

  constructor(
    private readonly bytes: Uint8Array,
    readonly littleEndian: boolean,
    private readonly entries: ReadonlyMap<number, DirectoryEntry>,
  ) {
    this.u16 = littleEndian ? (at) => bytes[at]! | (bytes[at + 1]! << 8) : (at) => (bytes[at]! << 8) | bytes[at + 1]!;
    this.u32 = littleEndian ? (at) => this.u16(at) + this.u16(at + 2) * 0x10000 : (at) => this.u16(at) * 0x10000 + this.u16(at + 2);
  }

  /** The first directory of a TIFF, its entries bounded by the file (values are checked when read). */
  static read(bytes: Uint8Array): Directory {
    const littleEndian = bytes[0] === 0x49;
    const reader = new Directory(bytes, littleEndian, new Map());
    if (bytes.length < 8) throw corrupt('it ends too early');
    const ifd = reader.u32(4);
    if (ifd + 2 > bytes.length) throw corrupt('its first directory lies outside the file');
    const count = reader.u16(ifd);
    if (ifd + 2 + count * 12 > bytes.length) throw corrupt('its first directory lies outside the file');
    const entries = new Map<number, DirectoryEntry>();
    for (let i = 0; i < count; i++) {
      const at = ifd + 2 + i * 12;
      const type = reader.u16(at + 2);
      const size = TYPE_BYTES[type];
      if (size === undefined) continue; // a type TIFF readers skip
      const values = reader.u32(at + 4);
      entries.set(reader.u16(at), { type, count: values, valueAt: values * size <= 4 ? at + 8 : reader.u32(at + 8) });
    }
    return new Directory(bytes, littleEndian, entries);
  }

  entry(tag: number): DirectoryEntry | undefined {
    return this.entries.get(tag);
  }

  /** Value `index` of an entry of BYTEs, SHORTs or LONGs, read inside the file. */
  value(entry: DirectoryEntry, index: number): number {
    const at = entry.valueAt + index * TYPE_BYTES[entry.type]!;
    if (entry.type === TYPE_SHORT) return this.u16(at);
    if (entry.type === TYPE_LONG) return this.u32(at);
    return this.bytes[at]!;
  }

  /** Checks that an entry holds at least `least` integers whose bytes lie inside the file. */
  integers(tag: number, least = 1): DirectoryEntry | undefined {
    const entry = this.entries.get(tag);
    if (!entry) return undefined;
    if (entry.type !== TYPE_BYTE && entry.type !== TYPE_SHORT && entry.type !== TYPE_LONG) {
      throw corrupt(`its tag ${tag} is not of a whole-number type`);
    }
    if (entry.count < least) throw corrupt(`its tag ${tag} holds ${entry.count} values, ${least} at least are needed`);
    if (entry.valueAt + entry.count * TYPE_BYTES[entry.type]! > this.bytes.length) {
      throw corrupt(`its tag ${tag} points outside the file`);
    }
    return entry;
  }

  first(tag: number): number | undefined {
    const entry = this.integers(tag);
    return entry && this.value(entry, 0);
  }

  /** Every value of a tag; only for tags whose count is checked small (a colour map holds 3 × 256 at most). */
  all(tag: number, expected?: number): number[] | undefined {
    const entry = this.integers(tag);
    if (!entry) return undefined;
    if (expected !== undefined && entry.count !== expected) throw corrupt(`its tag ${tag} holds ${entry.count} values, not ${expected}`);
    return Array.from({ length: entry.count }, (_, i) => this.value(entry, i));
  }
}

/**
 * Reads and checks the first page of a TIFF before anything decodes it: the variant (utif decodes
 * strips uncompressed, LZW, Deflate or PackBits, of grey, RGB(A) or palette pixels of the depths in
 * SUPPORTED_LAYOUTS; not tiles, separate planes, floating-point samples, CMYK, YCbCr or JPEG
 * inside), and every strip inside the file, none overlapping. Throws an ImageDecodeError that says
 * what is wrong or not supported. A linear walk over the strips' entries, nothing allocated for them.
 */
export function readTiffPage(bytes: Uint8Array): TiffPage {
  const directory = Directory.read(bytes);
  const width = directory.first(Tag.ImageWidth);
  const height = directory.first(Tag.ImageLength);
  if (!width || !height) throw corrupt('its first page has no width or no height');
  if (directory.entry(Tag.TileWidth) || directory.entry(Tag.TileOffsets)) throw unsupported('tiled pages; only pages in strips are');

  const compression = directory.first(Tag.Compression) ?? Compression.None;
  if (!SUPPORTED_COMPRESSIONS.has(compression)) {
    throw unsupported(`compression ${compression}; uncompressed, LZW, Deflate and PackBits pages are`);
  }
  const bitsPerSample = directory.first(Tag.BitsPerSample) ?? 1;
  const samplesPerPixel = directory.first(Tag.SamplesPerPixel) ?? 1;
  const photometric = directory.first(Tag.Photometric) ?? (bitsPerSample === 1 ? Photometric.WhiteIsZero : Photometric.Rgb);
  const layouts = SUPPORTED_LAYOUTS[photometric];
  if (!layouts) throw unsupported(`photometric interpretation ${photometric}; grey, RGB and palette pages are`);
  if (!layouts.some(([bits, samples]) => bits === bitsPerSample && samples === samplesPerPixel)) {
    throw unsupported(`${samplesPerPixel} samples of ${bitsPerSample} bits a pixel for photometric interpretation ${photometric}`);
  }
  if (samplesPerPixel > 1 && (directory.first(Tag.PlanarConfiguration) ?? 1) !== 1) throw unsupported('samples in separate planes');
  if ((directory.all(Tag.SampleFormat) ?? [1]).some((format) => format !== 1)) throw unsupported('samples that are not unsigned integers');
  const predictor = directory.first(Tag.Predictor) ?? 1;
  if (predictor !== 1 && !(predictor === 2 && (bitsPerSample === 8 || bitsPerSample === 16))) {
    throw unsupported(`predictor ${predictor}`);
  }
  const colorMap = photometric === Photometric.Palette ? directory.all(Tag.ColorMap, 3 << bitsPerSample) : undefined;
  if (photometric === Photometric.Palette && !colorMap) throw corrupt('its palette page has no colour map');
  const extraSamples = samplesPerPixel === 4 ? directory.all(Tag.ExtraSamples) : undefined;

  const rowBytes = Math.ceil((width * bitsPerSample * samplesPerPixel) / 8);
  const rowsPerStrip = Math.min(Math.max(directory.first(Tag.RowsPerStrip) ?? height, 1), height);
  const strips = Math.ceil(height / rowsPerStrip);
  const stripOffsets = directory.integers(Tag.StripOffsets, strips);
  const stripByteCounts = directory.integers(Tag.StripByteCounts, strips);
  if (!stripOffsets || !stripByteCounts) throw corrupt(`its first page has no strips, or fewer than its ${strips} rows of strips need`);
  let stored = 0;
  for (let i = 0; i < strips; i++) {
    const offset = directory.value(stripOffsets, i);
    const count = directory.value(stripByteCounts, i);
    if (offset + count > bytes.length) throw corrupt(`its strip ${i + 1} lies outside the file`);
    if (isDeflate(compression) && count < DEFLATE_FRAMING_BYTES) throw corrupt(`its strip ${i + 1} is too short for Deflate data`);
    stored += count;
  }
  // utif copies or decodes each strip as its byte count says: strips that overlap would make a
  // file decode more than it holds.
  if (stored > bytes.length) throw corrupt('its strips overlap');

  return {
    littleEndian: directory.littleEndian,
    width,
    height,
    bitsPerSample,
    samplesPerPixel,
    compression,
    photometric,
    predictor,
    rowsPerStrip,
    strips,
    stripOffsets,
    stripByteCounts,
    colorMap,
    extraSamples,
    sampleBytes: rowBytes * height,
    stripBytes: rowBytes * rowsPerStrip,
  };
}

const isDeflate = (compression: number): boolean => compression === Compression.Deflate || compression === Compression.AdobeDeflate;
/** A zlib stream's header (2 bytes) and checksum (4), which utif skips around the Deflate data. */
const DEFLATE_FRAMING_BYTES = 6;
/** Bytes a strip offset and its byte count take in the arrays handed to utif. */
const BYTES_PER_STRIP = 16;
const RGBA_BYTES = 4;

/**
 * What decoding `page` and encoding the result hold at their peak: the source and utif's copy of
 * it, the uncompressed samples, each Deflate strip twice (our bounded check, then utif's own
 * inflate), the strips' arrays, the RGBA and the encoded output (at most 4 bytes a pixel).
 */
export function tiffCodecMemoryBytes(page: TiffPage, sourceBytes: number): number {
  const pixels = page.width * page.height;
  const inflating = isDeflate(page.compression) ? page.stripBytes * 2 : 0;
  return sourceBytes * 2 + page.sampleBytes + inflating + page.strips * BYTES_PER_STRIP + pixels * RGBA_BYTES * 2;
}

/** The TIFF's bytes as an ArrayBuffer of their own: utif reads strips at offsets from the buffer's start. */
function ownArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return new Uint8Array(bytes).buffer; // a copy (Buffer's own slice() would be a view)
}

/** Decodes the first page of a TIFF checked by readTiffPage to RGBA. */
export function decodeTiff(bytes: Uint8Array, page: TiffPage): RgbaBitmap {
  const file = ownArrayBuffer(bytes);
  const view = new Uint8Array(file);
  const directory = new Directory(view, page.littleEndian, new Map());
  const offsets = Array.from({ length: page.strips }, (_, i) => directory.value(page.stripOffsets, i));
  const counts = Array.from({ length: page.strips }, (_, i) => directory.value(page.stripByteCounts, i));
  for (let i = 0; i < page.strips; i++) {
    const decoded = decodedStripBytes(view, page.compression, offsets[i]!, counts[i]!, page.stripBytes);
    if (decoded > page.stripBytes) {
      throw corrupt(`its strip ${i + 1} decodes past the ${page.stripBytes} bytes a strip of its rows holds`);
    }
  }
  // The tags utif reads, named as it names them ("t" and the tag's number), in an object of our own.
  const ifd: Record<string, unknown> = {
    t256: [page.width],
    t257: [page.height],
    t258: Array<number>(page.samplesPerPixel).fill(page.bitsPerSample),
    t259: [page.compression],
    t262: [page.photometric],
    t273: offsets,
    t277: [page.samplesPerPixel],
    t278: [page.rowsPerStrip],
    t279: counts,
    t284: [1],
    t317: [page.predictor],
    ...(page.colorMap ? { t320: page.colorMap } : {}),
    ...(page.extraSamples ? { t338: page.extraSamples } : {}),
  };
  UTIF.decodeImage(file, ifd as unknown as UTIF.IFD);
  const rgba = UTIF.toRGBA8(ifd as unknown as UTIF.IFD);
  return { data: Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength), width: page.width, height: page.height };
}

/**
 * Bytes a strip decodes to, counted without decoding, stopping once past `limit`; 0 when the
 * strip is stored uncompressed (utif copies at most its byte count) or its Deflate data is damaged
 * (utif fails on it the same way, having inflated no more).
 */
function decodedStripBytes(file: Uint8Array, compression: number, offset: number, count: number, limit: number): number {
  switch (compression) {
    case Compression.Lzw:
      return lzwDecodedBytes(file, offset, count, limit);
    case Compression.PackBits:
      return packBitsDecodedBytes(file, offset, count, limit);
    case Compression.Deflate:
    case Compression.AdobeDeflate:
      try {
        return inflateRawSync(file.subarray(offset + 2, offset + count - 4), { maxOutputLength: Math.max(1, limit) }).length;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? limit + 1 : 0;
      }
    default:
      return 0;
  }
}

const LZW_CLEAR = 256;
const LZW_END = 257;
const LZW_FIRST_CODE = 258;
const LZW_TABLE_SIZE = 4096;

/**
 * TIFF LZW (codes of 9 to 12 bits, most significant bit first, the width growing one code early),
 * as utif reads it, counting the bytes each code stands for. A code that refers to an entry not
 * yet made, or a code after a clear that is not a byte, is damage: utif would follow a stale
 * entry, possibly round a cycle of them forever, so the strip counts as decoding past its limit.
 */
function lzwDecodedBytes(data: Uint8Array, start: number, length: number, limit: number): number {
  const lengths = new Uint32Array(LZW_TABLE_SIZE);
  lengths.fill(1, 0, LZW_FIRST_CODE);
  const end = (start + length) * 8;
  let bit = start * 8;
  let width = 9;
  let next = LZW_FIRST_CODE;
  let previous = 0;
  let decoded = 0;
  const read = (): number => {
    const at = bit >>> 3;
    const word = ((data[at] ?? 0) << 16) | ((data[at + 1] ?? 0) << 8) | (data[at + 2] ?? 0);
    const code = (word >>> (24 - (bit & 7) - width)) & ((1 << width) - 1);
    bit += width;
    return code;
  };
  const add = (prefix: number): void => {
    if (next < LZW_TABLE_SIZE) lengths[next] = lengths[prefix]! + 1;
    next += 1;
    if (next + 1 === 1 << width && width !== 12) width += 1;
  };
  while (bit < end && decoded <= limit) {
    let code = read();
    if (code === LZW_END) break;
    if (code === LZW_CLEAR) {
      width = 9;
      next = LZW_FIRST_CODE;
      code = read();
      if (code === LZW_END) break;
      if (code >= LZW_CLEAR) return limit + 1;
      decoded += 1;
    } else if (code < next) {
      decoded += lengths[code]!;
      add(previous);
    } else if (code === next) {
      add(previous);
      decoded += lengths[code]!;
    } else {
      return limit + 1;
    }
    previous = code;
  }
  return decoded;
}

/** PackBits as utif reads it: a signed count n, then n + 1 bytes as they are, or one byte 1 − n times. */
function packBitsDecodedBytes(data: Uint8Array, start: number, length: number, limit: number): number {
  let decoded = 0;
  for (let at = start, end = start + length; at < end && decoded <= limit;) {
    const n = (data[at]! << 24) >> 24;
    at += 1;
    if (n >= 0) {
      decoded += n + 1;
      at += n + 1;
    } else if (n > -128) {
      decoded += 1 - n;
      at += 1;
    }
  }
  return decoded;
}

/**
 * One page of 8-bit samples, uncompressed, in one strip after the directory (which utif writes,
 * big-endian, at the start: a reader of the file's head finds the size): RGB when every pixel is
 * opaque, else RGBA with its alpha marked unassociated (not premultiplied), as our pixels are.
 */
export function encodeTiff(bitmap: RgbaBitmap): Buffer {
  const { width, height } = bitmap;
  const samples = hasTransparency(bitmap) ? 4 : 3;
  const pixelBytes = width * height * samples;
  // utif writes the entries in the object's order: ascending tags, as TIFF wants.
  const directory = (stripOffset: number) =>
    ({
      t256: [width],
      t257: [height],
      t258: Array<number>(samples).fill(8),
      t259: [Compression.None],
      t262: [Photometric.Rgb],
      t273: [stripOffset],
      t277: [samples],
      t278: [height],
      t279: [pixelBytes],
      t282: [[72, 1]],
      t283: [[72, 1]],
      t284: [1],
      t296: [2],
      ...(samples === 4 ? { t338: [2] } : {}),
    }) as unknown as UTIF.IFD;
  const headerBytes = UTIF.encode([directory(0)]).byteLength;
  const header = new Uint8Array(UTIF.encode([directory(headerBytes)]));
  const out = Buffer.allocUnsafe(headerBytes + pixelBytes);
  out.set(header);
  if (samples === 3) packRgb(bitmap, out, headerBytes);
  else bitmap.data.copy(out, headerBytes);
  return out;
}
