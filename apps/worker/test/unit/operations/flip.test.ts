import { flip } from '../../../src/domain/operations/flip';
import { A, B, C, D, E, F, pictureOf, threeByTwo } from './bitmaps';

describe('flip', () => {
  it('when it runs, then the image is upside down, each pixel with its alpha, and its size stays', () => {
    expect(pictureOf(flip.apply(threeByTwo()))).toEqual({ width: 3, height: 2, pixels: [D, E, F, A, B, C] });
  });

  it('counts the buffers jimp makes for it', () => {
    expect(flip.workingBytesPerPixel).toBeGreaterThanOrEqual(4);
  });
});
