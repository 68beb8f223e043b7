// Screenshot-like test images: flat panels, a few colours, lines of text-like glyphs with sharp
// edges and a little anti-aliasing, a gradient title bar. Deterministic per seed. The other
// kind the PNG encoder's settings are measured on, beside the benchmark's photo-like images.
'use strict';
const png = require('@jimp/js-png').default();

function seededRandom(seed) {
  let state = seed >>> 0;
  return () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

const GLYPH_WIDTH = 5;
const GLYPH_HEIGHT = 8;

/** An opaque RGBA bitmap that looks like a window with text in it. */
function screenBitmap(width, height, seed) {
  const data = Buffer.alloc(width * height * 4);
  const random = seededRandom(seed);
  const fill = (x0, y0, x1, y1, [r, g, b]) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x1); x++) {
        const i = (y * width + x) * 4;
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
        data[i + 3] = 255;
      }
    }
  };
  fill(0, 0, width, height, [246, 246, 248]);
  // Title bar: a vertical gradient.
  for (let y = 0; y < Math.min(height, 28); y++) fill(0, y, width, y + 1, [40 + y * 2, 60 + y * 2, 110 + y * 3]);
  // Side panel and a few cards.
  const side = Math.floor(width * 0.22);
  fill(0, 28, side, height, [230, 233, 238]);
  fill(side, 28, side + 1, height, [200, 204, 210]);
  for (let card = 0; card < 4; card++) {
    const x0 = side + 16 + Math.floor(random() * 40);
    const y0 = 44 + card * Math.floor(height / 4.5);
    fill(x0, y0, width - 16, y0 + Math.floor(height / 6), [255, 255, 255]);
    fill(x0, y0, width - 16, y0 + 1, [210, 214, 220]);
    fill(x0 + 10, y0 + 10, x0 + 70, y0 + 26, [52, 120, 246]);
  }
  // Glyphs: each a random 5×8 pattern, dark ink with a lighter rim on its left (anti-aliasing).
  const glyphs = Array.from({ length: 40 }, () => Array.from({ length: GLYPH_WIDTH * GLYPH_HEIGHT }, () => random() < 0.38));
  const ink = [
    [32, 33, 36],
    [90, 94, 100],
    [52, 120, 246],
  ];
  for (let line = 34; line + GLYPH_HEIGHT < height; line += 14) {
    const left = line < 40 ? 8 : random() < 0.3 ? 8 : side + 28;
    const right = left === 8 && line >= 40 ? side - 8 : width - 24;
    const colour = ink[Math.floor(random() * ink.length)];
    for (let x = left; x + GLYPH_WIDTH < right; x += GLYPH_WIDTH + 2) {
      if (random() < 0.15) continue; // a space
      const glyph = glyphs[Math.floor(random() * glyphs.length)];
      for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
        for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
          if (!glyph[gy * GLYPH_WIDTH + gx]) continue;
          fill(x + gx, line + gy, x + gx + 1, line + gy + 1, colour);
          const i = ((line + gy) * width + x + gx - 1) * 4;
          if (gx > 0 && !glyph[gy * GLYPH_WIDTH + gx - 1]) {
            for (let c = 0; c < 3; c++) data[i + c] = (data[i + c] + colour[c]) >> 1;
          }
        }
      }
    }
  }
  return { data, width, height };
}

/** PNG as a common tool writes a screenshot: RGB, zlib level 6, adaptive filters. */
function screenPngs(width, height, count, firstSeed = 1) {
  return Array.from({ length: count }, (_, k) =>
    Buffer.from(
      png.encode(screenBitmap(width, height, firstSeed + k), { deflateLevel: 6, deflateStrategy: 0, colorType: 2, inputHasAlpha: true }),
    ),
  );
}

module.exports = { screenBitmap, screenPngs };
