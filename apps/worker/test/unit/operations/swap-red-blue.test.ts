import { swapRedBlue } from '../../../src/domain/operations/swap-red-blue';
import { pictureOf, twoByTwo } from './bitmaps';

describe('swap-red-blue', () => {
  it('when it runs, then red and blue trade places and green and alpha stay, in the same buffer', () => {
    const bitmap = twoByTwo();
    const buffer = bitmap.data;
    const result = swapRedBlue.apply(bitmap);
    expect(pictureOf(result)).toEqual({
      width: 2,
      height: 2,
      pixels: [
        [0, 0, 255, 255],
        [30, 20, 10, 0],
        [255, 128, 0, 128],
        [255, 255, 255, 7],
      ],
    });
    expect(result.data).toBe(buffer);
    expect(swapRedBlue.workingBytesPerPixel).toBe(0);
  });

  it('when it runs twice, then the image is back as it was', () => {
    const bitmap = swapRedBlue.apply(swapRedBlue.apply(twoByTwo()));
    expect(bitmap.data).toEqual(twoByTwo().data);
  });
});
