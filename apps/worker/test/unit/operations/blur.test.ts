import { BLUR_RADIUS } from '@pixelmill/contracts';
import { blur } from '../../../src/domain/operations/blur';
import { bitmapOf, pictureOf, type Rgba } from './bitmaps';

const WIDTH = 40;
const HEIGHT = 6;
const EDGE = WIDTH / 2;
const DARK = [10, 20, 30] as const;
// Light enough that jimp's fixed-point division would show at another radius (at 5, 228–254 come out lighter).
const LIGHT = [240, 235, 230] as const;

/** Dark on the left half, light on the right, with an alpha that differs from pixel to pixel. */
function halves(): Rgba[] {
  const pixels: Rgba[] = [];
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) pixels.push([...(x < EDGE ? DARK : LIGHT), (x * 37 + y * 11) % 256]);
  }
  return pixels;
}

describe('blur', () => {
  const source = halves();
  const result = pictureOf(blur.apply(bitmapOf(WIDTH, HEIGHT, source)));
  const at = (x: number, y: number) => result.pixels[y * WIDTH + x]!;

  it('when it runs, then the colours on both sides of an edge blend into each other', () => {
    expect([result.width, result.height]).toEqual([WIDTH, HEIGHT]);
    for (let y = 0; y < HEIGHT; y++) {
      const [darkSide, lightSide] = [at(EDGE - 1, y), at(EDGE, y)];
      for (let channel = 0; channel < 3; channel++) {
        expect(darkSide[channel]).toBeGreaterThan(DARK[channel]! + 20);
        expect(lightSide[channel]).toBeLessThan(LIGHT[channel]! - 20);
        expect(darkSide[channel]).toBeLessThan(lightSide[channel]!);
      }
    }
  });

  it('when an area is flat farther than twice the radius from an edge, then it keeps its colour exactly', () => {
    const reach = 2 * BLUR_RADIUS; // two box blurs of the radius
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < EDGE - reach; x++) expect(at(x, y).slice(0, 3)).toEqual([...DARK]);
      for (let x = EDGE + reach; x < WIDTH; x++) expect(at(x, y).slice(0, 3)).toEqual([...LIGHT]);
    }
  });

  it('when it runs, then every pixel keeps its alpha exactly (jimp alone would blur it too)', () => {
    expect(result.pixels.map((pixel) => pixel[3])).toEqual(source.map((pixel) => pixel[3]));
  });

  it('counts jimp’s working arrays, many times the pixels', () => {
    expect(blur.workingBytesPerPixel).toBeGreaterThanOrEqual(32);
  });
});
