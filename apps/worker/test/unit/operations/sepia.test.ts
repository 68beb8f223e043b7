import { sepia } from '../../../src/domain/operations/sepia';
import { bitmapOf, pictureOf } from './bitmaps';

describe('sepia', () => {
  it('when it runs, then each colour gets its sepia tone (jimp’s) and alpha stays', () => {
    const bitmap = bitmapOf(2, 2, [
      [128, 128, 128, 255],
      [255, 0, 0, 200],
      [10, 20, 30, 0],
      [255, 255, 255, 7],
    ]);
    const result = sepia.apply(bitmap);
    // jimp's formula, each channel truncated and capped at 255, green from the red just toned and
    // blue from both: R' = .393 R + .769 G + .189 B; G' = .349 R' + .686 G + .168 B; B' = .272 R' + .534 G' + .131 B.
    expect(pictureOf(result)).toEqual({
      width: 2,
      height: 2,
      pixels: [
        [172, 169, 154, 255],
        [100, 34, 45, 200],
        [24, 27, 25, 0],
        [255, 255, 255, 7],
      ],
    });
    expect(result.data).toBe(bitmap.data);
    expect(sepia.workingBytesPerPixel).toBe(0);
  });
});
