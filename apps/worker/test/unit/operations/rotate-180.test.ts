import { rotate180 } from '../../../src/domain/operations/rotate-180';
import { A, B, C, D, E, F, pictureOf, threeByTwo } from './bitmaps';

describe('rotate-180', () => {
  it('when a 3x2 image turns, then it is 3x2 with every pixel (and its alpha) opposite where it was', () => {
    expect(pictureOf(rotate180.apply(threeByTwo()))).toEqual({ width: 3, height: 2, pixels: [F, E, D, C, B, A] });
  });

  it('counts a second bitmap', () => {
    expect(rotate180.workingBytesPerPixel).toBe(4);
  });
});
