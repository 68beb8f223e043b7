import { mirror } from '../../../src/domain/operations/mirror';
import { A, B, C, D, E, F, pictureOf, threeByTwo } from './bitmaps';

describe('mirror', () => {
  it('when it runs, then left and right trade places, each pixel with its alpha, and the size stays', () => {
    expect(pictureOf(mirror.apply(threeByTwo()))).toEqual({ width: 3, height: 2, pixels: [C, B, A, F, E, D] });
  });

  it('counts the buffers jimp makes for it', () => {
    expect(mirror.workingBytesPerPixel).toBeGreaterThanOrEqual(4);
  });
});
