import { detectImageType, readDeclaredDimensions, type ImageType } from '@pixelmill/contracts';
import { tiffDeclaring } from '@pixelmill/contracts/testing';
import { IMAGE_HEAD_BYTES, IMAGE_TYPE_BYTES } from '../src';

/** The start of an image of each type, declaring 300×200, with as little as each format allows. */
function headerOf(type: ImageType): Buffer {
  switch (type) {
    case 'image/png': {
      const ihdr = Buffer.alloc(25);
      ihdr.writeUInt32BE(13, 0);
      ihdr.write('IHDR', 4, 'latin1');
      ihdr.writeUInt32BE(300, 8);
      ihdr.writeUInt32BE(200, 12);
      return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr]);
    }
    case 'image/gif': {
      const gif = Buffer.alloc(13);
      gif.write('GIF89a', 0, 'latin1');
      gif.writeUInt16LE(300, 6);
      gif.writeUInt16LE(200, 8);
      return gif;
    }
    case 'image/bmp': {
      const bmp = Buffer.alloc(54);
      bmp.write('BM', 0, 'latin1');
      bmp.writeUInt32LE(40, 14);
      bmp.writeInt32LE(300, 18);
      bmp.writeInt32LE(200, 22);
      return bmp;
    }
    case 'image/jpeg':
      return jpegAfterMetadata(0);
    case 'image/tiff':
      return Buffer.from(tiffDeclaring(300, 200));
  }
}

/** A JPEG whose frame header follows `segments` APP segments of the largest size (64 KB each). */
function jpegAfterMetadata(segments: number): Buffer {
  const app = Buffer.alloc(2 + 65_535);
  app.writeUInt16BE(0xffe1, 0);
  app.writeUInt16BE(65_535, 2);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 200, 0x01, 0x2c, 0x03]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), ...Array.from({ length: segments }, () => app), sof]);
}

describe('image head lengths', () => {
  it.each(['image/png', 'image/gif', 'image/bmp', 'image/jpeg', 'image/tiff'] as const)(
    'when %s is cut to IMAGE_TYPE_BYTES, then its type is still told',
    (type) => {
      expect(detectImageType(headerOf(type).subarray(0, IMAGE_TYPE_BYTES))).toBe(type);
    },
  );

  it.each(['image/png', 'image/gif', 'image/bmp', 'image/jpeg', 'image/tiff'] as const)(
    'when %s is cut to IMAGE_HEAD_BYTES, then its declared size is still read',
    (type) => {
      expect(readDeclaredDimensions(type, headerOf(type).subarray(0, IMAGE_HEAD_BYTES))).toEqual({ width: 300, height: 200 });
    },
  );

  it('when a JPEG carries a full 64 KB metadata segment before its frame, then its size is within the head', () => {
    const jpeg = jpegAfterMetadata(1);
    expect(jpeg.length).toBeGreaterThan(64 * 1024);
    expect(readDeclaredDimensions('image/jpeg', jpeg.subarray(0, IMAGE_HEAD_BYTES))).toEqual({ width: 300, height: 200 });
  });
});
