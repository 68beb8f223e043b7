import { crc32, deflateSync } from 'node:zlib';
import type { Dimensions } from '../image-dimensions';

// Images made byte by byte, as an attacker would: sizes a decoder allocates for that the first
// header does not show. Shared by the tests of every service that judges an image before decoding.

const GIF_HEADER = Buffer.from('GIF89a', 'latin1');
/** LZW data of a frame: minimum code size 2, one sub-block (clear code, end code), terminator. */
const EMPTY_LZW = Buffer.from([2, 1, 0x2c, 0]);

/** A logical screen descriptor with a global palette of 2 colours (black, white). */
function gifScreen(width: number, height: number): Buffer {
  const screen = Buffer.from([0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  return screen;
}

function gifImageDescriptor(width: number, height: number): Buffer {
  const descriptor = Buffer.from([0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  descriptor.writeUInt16LE(width, 5);
  descriptor.writeUInt16LE(height, 7);
  return descriptor;
}

/** The 35 bytes of issue 8: a 1×1 screen whose one frame is 65535×65535. */
export function gifWithHugeFrame(): Buffer {
  return Buffer.concat([
    GIF_HEADER,
    gifScreen(1, 1),
    gifImageDescriptor(0xffff, 0xffff),
    Buffer.from([2, 2, 0x4c, 0x01, 0]),
    Buffer.from([0x3b]),
  ]);
}

/** A screen of `width`×`height` and `count` frames as large, each after a graphic control extension. */
export function gifWithFrames(count: number, width: number, height: number): Buffer {
  return gifWithFrameSizes({ width, height }, Array<Dimensions>(count).fill({ width, height }));
}

/** A screen of `screen`'s size and a frame of each size in `frames`, each after a graphic control extension. */
export function gifWithFrameSizes(screen: Dimensions, frames: Dimensions[]): Buffer {
  const graphicControl = Buffer.from([0x21, 0xf9, 4, 0, 10, 0, 0, 0]);
  const comment = Buffer.concat([Buffer.from([0x21, 0xfe, 5]), Buffer.from('hello', 'latin1'), Buffer.from([0])]);
  const blocks = frames.map(({ width, height }) =>
    Buffer.concat([graphicControl, gifImageDescriptor(width, height), EMPTY_LZW]),
  );
  return Buffer.concat([GIF_HEADER, gifScreen(screen.width, screen.height), comment, ...blocks, Buffer.from([0x3b])]);
}

/** A baseline start-of-frame segment of three components at full resolution (4:4:4). */
function jpegStartOfFrame(width: number, height: number): Buffer {
  const sof = Buffer.from([0xff, 0xc0, 0, 17, 8, 0, 0, 0, 0, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return sof;
}

/** `jpeg` with a second frame header of `width`×`height` after its scan, before its end marker. */
export function jpegWithSecondFrame(jpeg: Buffer, width: number, height: number): Buffer {
  const end = jpeg.length - 2; // FF D9
  return Buffer.concat([jpeg.subarray(0, end), jpegStartOfFrame(width, height), jpeg.subarray(end)]);
}

/** `jpeg` with the size in its (first) frame header changed: a decoder sizes its blocks by it. */
export function jpegDeclaring(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let offset = 2; offset + 9 <= out.length; offset += 2 + out.readUInt16BE(offset + 2)) {
    if (out[offset + 1] === 0xc0) {
      out.writeUInt16BE(height, offset + 5);
      out.writeUInt16BE(width, offset + 7);
      return out;
    }
  }
  throw new Error('no baseline frame header in this JPEG');
}

/** A PNG chunk: its length, type, data and CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A grey RGBA PNG of `depth` bits a sample (8 or 16), not interlaced: valid, and tiny once deflated. */
export function rgbaPng(width: number, height: number, depth: 8 | 16): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = 6;
  const rowBytes = 1 + width * 4 * (depth / 8);
  const rows = Buffer.alloc(rowBytes * height, 0x80);
  for (let y = 0; y < height; y++) rows[y * rowBytes] = 0; // filter: none
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
