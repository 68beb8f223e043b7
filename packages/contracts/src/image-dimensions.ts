import type { ImageType } from './common';

export interface Dimensions {
  width: number;
  height: number;
}

/**
 * The size an image declares in its header, read before decoding so that a decompression bomb
 * is refused before its pixels are allocated. Null when the header is too short or damaged to
 * tell: the decoder then reports the damage.
 */
export function readDeclaredDimensions(type: ImageType, bytes: Buffer): Dimensions | null {
  switch (type) {
    case 'image/png':
      // Signature (8 bytes), then the IHDR chunk: length, type, width, height.
      if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR') return null;
      return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
    case 'image/gif':
      // Logical screen size after "GIF89a"; every frame is drawn on it.
      return bytes.length >= 10 ? { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) } : null;
    case 'image/bmp': {
      if (bytes.length < 26) return null;
      const headerSize = bytes.readUInt32LE(14);
      // OS/2 headers (12 bytes) store 16-bit sizes; the others 32-bit, height negative when top-down.
      if (headerSize === 12) return { width: bytes.readUInt16LE(18), height: bytes.readUInt16LE(20) };
      if (!BMP_INFO_HEADER_SIZES.has(headerSize)) return null;
      return { width: Math.abs(bytes.readInt32LE(18)), height: Math.abs(bytes.readInt32LE(22)) };
    }
    case 'image/jpeg':
      return readJpegFrameSize(bytes);
  }
}

/** BITMAPINFOHEADER and its later versions (V2, V3, V4, V5). */
const BMP_INFO_HEADER_SIZES = new Set([40, 52, 56, 108, 124]);

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4, C8, CC. */
const JPEG_SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const JPEG_START_OF_SCAN = 0xda;

/** Walks the marker segments after SOI up to the first start-of-frame, which holds the size. */
function readJpegFrameSize(bytes: Buffer): Dimensions | null {
  let offset = 2;
  while (offset + 9 <= bytes.length) {
    if (bytes[offset] !== 0xff) return null;
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (JPEG_SOF_MARKERS.has(marker)) {
      return { width: bytes.readUInt16BE(offset + 7), height: bytes.readUInt16BE(offset + 5) };
    }
    if (marker === JPEG_START_OF_SCAN) return null;
    offset += 2 + bytes.readUInt16BE(offset + 2);
  }
  return null;
}
