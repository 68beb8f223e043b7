// Measures PNG encode time and size per deflate level (1..9) on 512x512 images, to choose
// PNG_DEFLATE_LEVEL. Run: node apps/worker/scripts/measure-png-deflate.js [photo.jpg ...]
// Without arguments it uses a synthetic photo-like image (smooth shapes, texture, sensor noise).
'use strict';
const fs = require('node:fs');
const png = require('@jimp/js-png').default();
const jpeg = require('@jimp/js-jpeg').default();

const SIZE = 512;
const RUNS = 7;

function syntheticPhoto() {
  const data = Buffer.alloc(SIZE * SIZE * 4);
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 4;
      const sky = 150 + 60 * Math.sin(y / 90) + 25 * Math.cos(x / 70);
      const blob = 90 * Math.exp(-((x - 300) ** 2 + (y - 220) ** 2) / 9000);
      const texture = 18 * Math.sin(x / 5.3 + Math.sin(y / 11)) * Math.cos(y / 7.1);
      const noise = () => (random() - 0.5) * 10;
      data[i] = clamp(sky * 0.8 + blob + texture + noise());
      data[i + 1] = clamp(sky * 0.9 + blob * 0.6 + texture * 0.8 + noise());
      data[i + 2] = clamp(sky + blob * 0.3 - texture * 0.5 + noise());
      data[i + 3] = 255;
    }
  }
  return { label: 'synthetic photo-like', bitmap: { data, width: SIZE, height: SIZE } };
}

const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));

/** Nearest-neighbour scale of the central square of an image to SIZE x SIZE. */
function photo(file) {
  const bytes = fs.readFileSync(file);
  const decoded = file.endsWith('.png') ? png.decode(bytes) : jpeg.decode(bytes, { useTArray: false, formatAsRGBA: true });
  const side = Math.min(decoded.width, decoded.height);
  const left = Math.floor((decoded.width - side) / 2);
  const top = Math.floor((decoded.height - side) / 2);
  const data = Buffer.alloc(SIZE * SIZE * 4);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const sx = left + Math.floor((x * side) / SIZE);
      const sy = top + Math.floor((y * side) / SIZE);
      decoded.data.copy(data, (y * SIZE + x) * 4, (sy * decoded.width + sx) * 4, (sy * decoded.width + sx) * 4 + 4);
    }
  }
  return {
    label: `${file.split('/').pop()} (${decoded.width}x${decoded.height}, centre crop)`,
    bitmap: { data, width: SIZE, height: SIZE },
  };
}

// zlib strategies: 0 default, 1 filtered, 3 RLE (jimp's default, which ignores most of the level).
const STRATEGIES = [
  [0, 'default'],
  [1, 'filtered'],
  [3, 'rle'],
];

function encodeMs(bitmap, options) {
  const times = [];
  let size = 0;
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint();
    size = png.encode(bitmap, options).length;
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: times[RUNS >> 1], size };
}

function measure({ label, bitmap }) {
  console.log(`\n${label}: raw RGB ${(SIZE * SIZE * 3) / 1024} KiB; median of ${RUNS} encodes, ms / KiB`);
  console.log(`level  ${STRATEGIES.map(([, name]) => name.padStart(16)).join('')}`);
  // Opaque images are encoded as RGB (colorType 2), as the worker does.
  encodeMs(bitmap, { deflateLevel: 6, colorType: 2 }); // warm-up
  for (let level = 1; level <= 9; level++) {
    const cells = STRATEGIES.map(([strategy]) => {
      const { ms, size } = encodeMs(bitmap, { deflateLevel: level, deflateStrategy: strategy, colorType: 2 });
      return `${ms.toFixed(1)} / ${(size / 1024).toFixed(1)}`.padStart(16);
    });
    console.log(`${String(level).padStart(5)}  ${cells.join('')}`);
  }
}

const images = process.argv.length > 2 ? process.argv.slice(2).map(photo) : [syntheticPhoto()];
images.forEach(measure);
