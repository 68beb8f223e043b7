import bmp from '@jimp/js-bmp';
import gif from '@jimp/js-gif';
import jpeg from '@jimp/js-jpeg';
import png from '@jimp/js-png';
import { readDeclaredDimensions, type ImageType } from '../src';

describe('readDeclaredDimensions', () => {
  const bitmap = () => ({ data: Buffer.alloc(7 * 5 * 4, 0x80), width: 7, height: 5 });

  it.each<[ImageType, () => Buffer | Promise<Buffer>]>([
    ['image/png', () => png().encode(bitmap())],
    ['image/jpeg', () => jpeg().encode(bitmap(), { quality: 80 })],
    ['image/bmp', () => bmp().encode(bitmap())],
    ['image/gif', () => gif().encode(bitmap())],
  ])('reads the size from the header of %s', async (type, make) => {
    expect(readDeclaredDimensions(type, await make())).toEqual({ width: 7, height: 5 });
  });

  it.each<[ImageType, Buffer]>([
    ['image/png', Buffer.from('\x89PNG\r\n\x1a\n but no IHDR chunk here', 'latin1')],
    ['image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00])],
    ['image/bmp', Buffer.from('BM')],
    ['image/gif', Buffer.from('GIF89a')],
  ])('when the %s header is cut short or damaged, then it says nothing', (type, bytes) => {
    expect(readDeclaredDimensions(type, bytes)).toBeNull();
  });
});
