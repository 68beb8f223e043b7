import { grayscale } from '../../../src/domain/operations/grayscale';
import { pictureOf, twoByTwo } from './bitmaps';

describe('grayscale', () => {
  it('when it runs, then each pixel gets its BT.601 luma in all three channels and alpha stays', () => {
    const result = grayscale.apply(twoByTwo());
    // (77 R + 150 G + 29 B + 128) >> 8
    expect(pictureOf(result)).toEqual({
      width: 2,
      height: 2,
      pixels: [
        [77, 77, 77, 255],
        [18, 18, 18, 0],
        [104, 104, 104, 128],
        [255, 255, 255, 7],
      ],
    });
    expect(grayscale.workingBytesPerPixel).toBe(0);
  });
});
