import { rotate270 } from '../../../src/domain/operations/rotate-270';
import { A, B, C, D, E, F, pictureOf, threeByTwo } from './bitmaps';

describe('rotate-270', () => {
  it('when a 2x1 image turns, then it is 1x2 with its right pixel on top (anticlockwise)', () => {
    const result = rotate270.apply({ data: Buffer.from([...A, ...B]), width: 2, height: 1 });
    expect(pictureOf(result)).toEqual({ width: 1, height: 2, pixels: [B, A] });
  });

  it('when a 3x2 image turns, then its top row becomes the left column, read upwards, each pixel with its alpha', () => {
    expect(pictureOf(rotate270.apply(threeByTwo()))).toEqual({ width: 2, height: 3, pixels: [C, F, B, E, A, D] });
  });

  it('counts a second bitmap', () => {
    expect(rotate270.workingBytesPerPixel).toBe(4);
  });
});
