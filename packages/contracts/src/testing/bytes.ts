// Byte building for the crafted images, on plain Uint8Arrays: no Buffer, no node:zlib, so the
// testing helpers run in a browser or a worker as well as in Node.

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One byte a character (Latin-1), as image formats spell their tags. */
export function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0) & 0xff);
}

export function setU16le(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
}

export function setU16be(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = (value >>> 8) & 0xff;
  bytes[at + 1] = value & 0xff;
}

export function setU32be(bytes: Uint8Array, at: number, value: number): void {
  setU16be(bytes, at, Math.floor(value / 0x10000));
  setU16be(bytes, at + 2, value);
}

export function setU32le(bytes: Uint8Array, at: number, value: number): void {
  setU16le(bytes, at, value);
  setU16le(bytes, at + 2, Math.floor(value / 0x10000));
}

export const u16be = (bytes: Uint8Array, at: number): number => (bytes[at]! << 8) | bytes[at + 1]!;

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 (ISO-HDLC), as PNG chunks carry it. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Adler-32, the checksum that ends a zlib stream; summed in runs short enough not to overflow. */
function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let start = 0; start < bytes.length; start += 5552) {
    const end = Math.min(bytes.length, start + 5552);
    for (let i = start; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return b * 0x10000 + a;
}

/** Writes bits least significant first, as deflate packs them. */
class BitWriter {
  private out = new Uint8Array(1024);
  private length = 0;
  private bits = 0;
  private count = 0;

  write(value: number, width: number): void {
    this.bits |= value << this.count;
    this.count += width;
    while (this.count >= 8) {
      this.push(this.bits & 0xff);
      this.bits >>>= 8;
      this.count -= 8;
    }
  }

  /** A Huffman code goes most significant bit first. */
  writeCode(code: number, width: number): void {
    let reversed = 0;
    for (let i = 0; i < width; i++) reversed = (reversed << 1) | ((code >>> i) & 1);
    this.write(reversed, width);
  }

  bytes(): Uint8Array {
    if (this.count > 0) this.push(this.bits & 0xff);
    this.bits = 0;
    this.count = 0;
    return this.out.subarray(0, this.length);
  }

  private push(byte: number): void {
    if (this.length === this.out.length) {
      const larger = new Uint8Array(this.out.length * 2);
      larger.set(this.out);
      this.out = larger;
    }
    this.out[this.length++] = byte;
  }
}

/**
 * The codes of one dynamic Huffman block, chosen for runs rather than counted from the data (any
 * data stays valid, runs get short codes): "copy the last 258 bytes again" (symbol 285) 1 bit,
 * each literal 10 bits, the end of block and the shorter lengths 6 to 8 bits. Every code is
 * complete (its lengths fill the code space), as inflaters require.
 */
const LITERAL_LENGTH_BITS: readonly number[] = Array.from({ length: 286 }, (_, symbol) =>
  symbol < 256 ? 10 : symbol < 266 ? 6 : symbol < 271 ? 7 : symbol < 285 ? 8 : 1,
);
/** Distance codes 0 (distance 1, the only one written) and 1, a bit each. */
const DISTANCE_BITS: readonly number[] = [1, 1];
/** The code that sends the code lengths above: only 1, 6, 7, 8 and 10 occur. */
const CODE_LENGTH_BITS: readonly number[] = Array.from({ length: 19 }, (_, length) =>
  length === 6 || length === 8 || length === 10 ? 2 : length === 1 || length === 7 ? 3 : 0,
);
/** The order in which a block header lists the code-length code's lengths (RFC 1951, 3.2.7). */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Canonical Huffman codes from their lengths (RFC 1951, 3.2.2). */
function canonicalCodes(lengths: readonly number[]): number[] {
  const longest = Math.max(...lengths);
  const count = new Array<number>(longest + 1).fill(0);
  for (const bits of lengths) if (bits > 0) count[bits]! += 1;
  const next = new Array<number>(longest + 1).fill(0);
  let code = 0;
  for (let bits = 1; bits <= longest; bits++) {
    code = (code + count[bits - 1]!) << 1;
    next[bits] = code;
  }
  return lengths.map((bits) => (bits > 0 ? next[bits]!++ : 0));
}

const LITERAL_LENGTH_CODES = canonicalCodes(LITERAL_LENGTH_BITS);
const DISTANCE_CODES = canonicalCodes(DISTANCE_BITS);
const CODE_LENGTH_CODES = canonicalCodes(CODE_LENGTH_BITS);

function writeSymbol(writer: BitWriter, symbol: number): void {
  writer.writeCode(LITERAL_LENGTH_CODES[symbol]!, LITERAL_LENGTH_BITS[symbol]!);
}

/** The block header: its type, then its codes, each length sent with the code-length code. */
function writeDynamicHeader(writer: BitWriter): void {
  writer.write(1, 1); // the last block
  writer.write(2, 2); // dynamic Huffman codes
  let listed = CODE_LENGTH_ORDER.length; // up to the last length that is not 0
  while (CODE_LENGTH_BITS[CODE_LENGTH_ORDER[listed - 1]!] === 0) listed -= 1;
  writer.write(LITERAL_LENGTH_BITS.length - 257, 5);
  writer.write(DISTANCE_BITS.length - 1, 5);
  writer.write(listed - 4, 4);
  for (const length of CODE_LENGTH_ORDER.slice(0, listed)) writer.write(CODE_LENGTH_BITS[length]!, 3);
  for (const bits of [...LITERAL_LENGTH_BITS, ...DISTANCE_BITS]) writer.writeCode(CODE_LENGTH_CODES[bits]!, CODE_LENGTH_BITS[bits]!);
}

const LENGTH_BASES = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA_BITS = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const MAX_MATCH = 258;

/** A copy of the byte just written, `length` times (3–258): a match at distance 1. */
function writeRepeat(writer: BitWriter, length: number): void {
  let index = LENGTH_BASES.length - 1;
  while (LENGTH_BASES[index]! > length) index -= 1;
  writeSymbol(writer, 257 + index);
  writer.write(length - LENGTH_BASES[index]!, LENGTH_EXTRA_BITS[index]!);
  writer.writeCode(DISTANCE_CODES[0]!, DISTANCE_BITS[0]!); // distance code 0: distance 1
}

/**
 * A zlib stream of `data`: one deflate block whose only matches are runs of one byte. Far from
 * zlib's ratio in general, but a flat image shrinks about a thousand times, as with zlib, which is
 * what the crafted images need (megapixels in kilobytes).
 */
export function zlibCompress(data: Uint8Array): Uint8Array {
  const writer = new BitWriter();
  writeDynamicHeader(writer);
  let i = 0;
  while (i < data.length) {
    const byte = data[i]!;
    writeSymbol(writer, byte);
    i += 1;
    let run = 0;
    while (i + run < data.length && data[i + run] === byte) run += 1;
    while (run >= 3) {
      const length = Math.min(run, MAX_MATCH);
      writeRepeat(writer, length);
      i += length;
      run -= length;
    }
  }
  writeSymbol(writer, 256); // end of block
  const body = writer.bytes();
  const out = new Uint8Array(2 + body.length + 4);
  out.set([0x78, 0x01]); // deflate, 32 KiB window, no dictionary
  out.set(body, 2);
  setU32be(out, 2 + body.length, adler32(data));
  return out;
}
