// Measures the PNG encoder's settings (row filter, zlib level and strategy) on photo-like images
// (the benchmark's) and screenshot-like ones (flat colours, text-like edges): CPU milliseconds of
// an encode (packing the RGBA pixels to RGB included, as the worker does for opaque images) and
// the output's size, each output checked lossless (decoded and compared pixel for pixel).
// Settings are interleaved round by round and the least CPU of the rounds is kept, so a busy
// machine slows them all alike.
// Images given as files (PNG or JPEG, e.g. real photos and screenshots) are a third kind.
//   node apps/worker/scripts/measure-png-encoder.js [--size 512x512] [--count 6] [--rounds 3] [FILE ...]
'use strict';
const fs = require('node:fs');
const png = require('@jimp/js-png').default();
const jpeg = require('@jimp/js-jpeg').default();
const { photoPngs } = require('../../../bench/test-images');
const { screenPngs } = require('./screen-images');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const FILTERS = { adaptive: -1, none: 0, sub: 1, up: 2, avg: 3, paeth: 4 };
const STRATEGIES = { default: 0, filtered: 1, rle: 3 };

const settings = [];
for (const filter of ['adaptive', 'sub', 'up', 'paeth', 'none']) {
  for (const level of [1, 2, 4, 6]) {
    for (const strategy of ['default', 'filtered', 'rle']) {
      if (strategy === 'rle' && level !== 4) continue; // RLE ignores the level
      settings.push({ filter, level, strategy });
    }
  }
}
// The worker hands pngjs RGB bytes it packed itself; pngjs packing them from RGBA (the worker
// until it was measured) is kept as one more setting, for comparison.
settings.push({ filter: 'adaptive', level: 4, strategy: 'default', pngjsPacks: true });
const label = ({ filter, level, strategy, pngjsPacks }) =>
  `${filter.padEnd(8)} level ${level} ${strategy.padEnd(8)}${pngjsPacks ? ' (pngjs packs RGB)' : ''}`;

function packRgb({ data, width, height }) {
  const rgb = Buffer.allocUnsafe(width * height * 3);
  for (let from = 0, to = 0; from < data.length; from += 4, to += 3) {
    rgb[to] = data[from];
    rgb[to + 1] = data[from + 1];
    rgb[to + 2] = data[from + 2];
  }
  return { data: rgb, width, height };
}

function cpuMs(fn) {
  const before = process.cpuUsage();
  const result = fn();
  const used = process.cpuUsage(before);
  return { ms: (used.user + used.system) / 1000, result };
}

/** A file given on the command line, as PNG bytes (a JPEG is decoded and written as PNG). */
function fileAsPng(file) {
  const bytes = fs.readFileSync(file);
  if (/\.png$/i.test(file)) return bytes;
  const decoded = jpeg.decode(bytes, { formatAsRGBA: true });
  return Buffer.from(png.encode({ data: Buffer.from(decoded.data), width: decoded.width, height: decoded.height }, { colorType: 6 }));
}

function measure(kind, sources, rounds) {
  // The pixels as the worker has them before it encodes: decoded, red and blue swapped, opaque.
  const bitmaps = sources.map((bytes) => {
    const bitmap = png.decode(bytes);
    for (let i = 3; i < bitmap.data.length; i += 4) bitmap.data[i] = 255;
    for (let i = 0; i < bitmap.data.length; i += 4) {
      const red = bitmap.data[i];
      bitmap.data[i] = bitmap.data[i + 2];
      bitmap.data[i + 2] = red;
    }
    return bitmap;
  });
  const best = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const setting of settings) {
      const options = {
        filterType: FILTERS[setting.filter],
        deflateLevel: setting.level,
        deflateStrategy: STRATEGIES[setting.strategy],
        colorType: 2,
        ...(setting.pngjsPacks ? { inputHasAlpha: true } : { inputColorType: 2, inputHasAlpha: false }),
      };
      let ms = 0;
      let bytes = 0;
      for (const bitmap of bitmaps) {
        const encoded = cpuMs(() => png.encode(setting.pngjsPacks ? bitmap : packRgb(bitmap), options));
        ms += encoded.ms;
        bytes += encoded.result.length;
        if (round === 0) {
          const back = png.decode(encoded.result);
          if (!back.data.equals(bitmap.data)) throw new Error(`${label(setting)} is not lossless on ${kind}`);
        }
      }
      const previous = best.get(setting);
      best.set(setting, { ms: Math.min(previous?.ms ?? Infinity, ms / bitmaps.length), kb: bytes / bitmaps.length / 1024 });
    }
  }
  return best;
}

function main() {
  const [width, height] = option('size', '512x512').split('x').map(Number);
  const count = Number(option('count', 6));
  const rounds = Number(option('rounds', 3));
  const photo = measure('photo', photoPngs(width, height, count), rounds);
  const screen = measure('screen', screenPngs(width, height, count), rounds);
  const fileArgs = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const files = fileArgs.length > 0 ? measure('files', fileArgs.map(fileAsPng), rounds) : undefined;
  console.log(`${width}x${height}, ${count} images of each kind, least CPU of ${rounds} rounds; every output decoded back identical`);
  if (files) console.log(`files: ${fileArgs.join(', ')}`);
  const fileColumns = files ? ` ${'files ms'.padStart(9)} ${'files KB'.padStart(9)}` : '';
  console.log(
    `${'setting'.padEnd(50)} ${'photo ms'.padStart(9)} ${'photo KB'.padStart(9)} ${'screen ms'.padStart(10)} ${'screen KB'.padStart(10)}${fileColumns}`,
  );
  for (const setting of settings) {
    const p = photo.get(setting);
    const s = screen.get(setting);
    const f = files?.get(setting);
    console.log(
      `${label(setting).padEnd(50)} ${p.ms.toFixed(1).padStart(9)} ${p.kb.toFixed(1).padStart(9)} ${s.ms.toFixed(1).padStart(10)} ${s.kb.toFixed(1).padStart(10)}` +
        (f ? ` ${f.ms.toFixed(1).padStart(9)} ${f.kb.toFixed(1).padStart(9)}` : ''),
    );
  }
}

main();
