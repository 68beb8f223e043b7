import { invert } from '../../../src/domain/operations/invert';
import { pictureOf, twoByTwo } from './bitmaps';

describe('invert', () => {
  it('when it runs, then each colour channel becomes 255 minus itself and alpha stays, in the same buffer', () => {
    const bitmap = twoByTwo();
    const result = invert.apply(bitmap);
    expect(pictureOf(result)).toEqual({
      width: 2,
      height: 2,
      pixels: [
        [0, 255, 255, 255],
        [245, 235, 225, 0],
        [255, 127, 0, 128],
        [0, 0, 0, 7],
      ],
    });
    expect(result.data).toBe(bitmap.data);
    expect(invert.workingBytesPerPixel).toBe(0);
  });
});
