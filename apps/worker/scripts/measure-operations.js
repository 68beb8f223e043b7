// Measures the operations on a photo-like RGBA image: CPU milliseconds of each, done with jimp's
// plugins (through @jimp/core's image class over the bitmap, as the worker does) and, where one
// exists, with a hand-written loop over the buffer, and the memory each allocates while it runs
// (Buffers outside the heap, arrays on it), in bytes per pixel. Variants are interleaved round by
// round and the least CPU of the rounds is kept, so a busy machine slows them all alike.
//   node --expose-gc apps/worker/scripts/measure-operations.js [--size 1920x1080] [--rounds 7]
'use strict';
const { createJimp } = require('@jimp/core');
const { methods: color } = require('@jimp/plugin-color');
const { methods: flip } = require('@jimp/plugin-flip');
const { methods: rotate } = require('@jimp/plugin-rotate');
const { methods: blur } = require('@jimp/plugin-blur');
const { BLUR_RADIUS } = require('@pixelmill/contracts');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const [width, height] = option('size', '1920x1080').split('x').map(Number);
const rounds = Number(option('rounds', '7'));
const Image = createJimp();

/** Smooth gradients with some noise, every pixel opaque: what a photo looks like to these loops. */
function photoLike() {
  const data = Buffer.allocUnsafe(width * height * 4);
  let seed = 1;
  const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 32) - 16;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 4) {
      data[i] = Math.max(0, Math.min(255, ((x * 255) / width + noise()) | 0));
      data[i + 1] = Math.max(0, Math.min(255, ((y * 255) / height + noise()) | 0));
      data[i + 2] = Math.max(0, Math.min(255, (((x + y) * 127) / (width + height) + 64 + noise()) | 0));
      data[i + 3] = 255;
    }
  }
  return data;
}

function grayscaleLoop({ data }) {
  for (let i = 0; i < data.length; i += 4) {
    const luma = (77 * data[i] + 150 * data[i + 1] + 29 * data[i + 2] + 128) >> 8;
    data[i] = luma;
    data[i + 1] = luma;
    data[i + 2] = luma;
  }
}

function invertLoop({ data }) {
  for (let i = 0; i < data.length; i += 4) {
    data[i] = 255 - data[i];
    data[i + 1] = 255 - data[i + 1];
    data[i + 2] = 255 - data[i + 2];
  }
}

const variants = {
  'grayscale, loop': grayscaleLoop,
  'grayscale, jimp': (bitmap) => color.greyscale(new Image(bitmap)),
  'invert, loop': invertLoop,
  'invert, jimp': (bitmap) => color.invert(new Image(bitmap)),
  'sepia, jimp': (bitmap) => color.sepia(new Image(bitmap)),
  'flip, jimp': (bitmap) => flip.flip(new Image(bitmap), { vertical: true }),
  'mirror, jimp': (bitmap) => flip.flip(new Image(bitmap), { horizontal: true }),
  'rotate-90, jimp': (bitmap) => rotate.rotate(new Image(bitmap), -90),
  'rotate-180, jimp': (bitmap) => rotate.rotate(new Image(bitmap), 180),
  [`blur r=${BLUR_RADIUS}, jimp`]: (bitmap) => blur.blur(new Image(bitmap), BLUR_RADIUS),
};

const gc = global.gc ?? (() => {});
const source = photoLike();
const pixels = width * height;
const best = {};
const memory = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const bitmap = { data: Buffer.from(source), width, height };
    gc();
    const before = process.memoryUsage();
    const cpu = process.cpuUsage();
    run(bitmap);
    const used = process.cpuUsage(cpu);
    const after = process.memoryUsage();
    const ms = (used.user + used.system) / 1000;
    best[name] = Math.min(best[name] ?? Infinity, ms);
    // Allocated during the operation and not yet collected, garbage included: more than it holds at
    // once where it grows arrays (blur: see the heap limit it needs in operations/blur.ts), less
    // where a collection ran meanwhile.
    const heap = (after.heapUsed - before.heapUsed) / pixels;
    const buffers = (after.arrayBuffers - before.arrayBuffers) / pixels;
    memory[name] = { heap: Math.max(memory[name]?.heap ?? 0, heap), buffers: Math.max(memory[name]?.buffers ?? 0, buffers) };
  }
}

console.log(`${width}x${height}, ${rounds} rounds, least CPU of the rounds; bytes per pixel allocated while it ran (most of the rounds)`);
for (const name of Object.keys(variants)) {
  const { heap, buffers } = memory[name];
  console.log(
    `${name.padEnd(18)} ${best[name].toFixed(1).padStart(7)} ms   heap ${heap.toFixed(1).padStart(5)} B/px   buffers ${buffers.toFixed(1).padStart(4)} B/px`,
  );
}
