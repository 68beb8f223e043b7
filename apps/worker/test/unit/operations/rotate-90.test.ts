import { rotate90 } from '../../../src/domain/operations/rotate-90';
import { A, B, C, D, E, F, pictureOf, threeByTwo } from './bitmaps';

describe('rotate-90', () => {
  it('when a 2x1 image turns, then it is 1x2 with its left pixel on top (clockwise)', () => {
    const result = rotate90.apply({ data: Buffer.from([...A, ...B]), width: 2, height: 1 });
    expect(pictureOf(result)).toEqual({ width: 1, height: 2, pixels: [A, B] });
  });

  it('when a 3x2 image turns, then its bottom row becomes the left column, each pixel with its alpha', () => {
    expect(pictureOf(rotate90.apply(threeByTwo()))).toEqual({ width: 2, height: 3, pixels: [D, A, E, B, F, C] });
  });

  it('counts a second bitmap', () => {
    expect(rotate90.workingBytesPerPixel).toBe(4);
  });
});
