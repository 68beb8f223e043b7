// Measures the worker's image work (decode → swap-red-blue → encode) on photo-like PNGs: on the
// main thread one after another (as the worker did before its thread pool), and through the
// transform pool with 1, 2, … threads; images per second (median and min–max of the repetitions)
// and the peak RSS of the process doing the work. Each configuration runs in a fresh process,
// so that its peak RSS is its own. Needs the build (npm run build).
//   node apps/worker/scripts/measure-thread-pool.js [--size 512x512] [--count 20] [--threads 1,2] [--reps 5]
//   node apps/worker/scripts/measure-thread-pool.js --size 1920x1080 --count 10 --threads 2
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const DIST = path.resolve(__dirname, '..', 'dist');
const CODEC = { pngDeflateLevel: 4, jpegQuality: 90, maxPixels: 50_000_000 };

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));

/** Smooth shapes, texture and sensor noise: compresses like a photo (about 370 KB at 512×512). */
function photoLike(width, height, seed) {
  const data = Buffer.alloc(width * height * 4);
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const noise = () => (random() - 0.5) * 14;
  const [cx, cy] = [width * (0.3 + (seed % 7) * 0.05), height * (0.3 + (seed % 5) * 0.08)];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const sky = 150 + 60 * Math.sin((y + seed) / 90) + 25 * Math.cos(x / 70);
      const blob = 90 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 9000);
      const texture = 18 * Math.sin(x / 5.3 + Math.sin(y / 11)) * Math.cos(y / 7.1);
      data[i] = clamp(sky * 0.8 + blob + texture + noise());
      data[i + 1] = clamp(sky * 0.9 + blob * 0.6 + texture * 0.8 + noise());
      data[i + 2] = clamp(sky + blob * 0.3 - texture * 0.5 + noise());
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

/** One configuration, in this (fresh) process: prints one JSON line. */
async function child(dir, threads, reps) {
  // Read for each task, as the worker downloads each source: the sources are not all in memory.
  const files = fs
    .readdirSync(dir)
    .sort()
    .map((name) => path.join(dir, name));
  const job = (file) => ({ source: fs.readFileSync(file), contentType: 'image/png', op: 'swap-red-blue' });
  let runAll;
  let close = async () => {};
  if (threads === 0) {
    const { ImageCodec } = require(path.join(DIST, 'domain', 'image-codec'));
    const { transformImage } = require(path.join(DIST, 'domain', 'image-transformer'));
    const codec = new ImageCodec(CODEC);
    runAll = async () => {
      for (const file of files) await transformImage(codec, fs.readFileSync(file), 'image/png', 'swap-red-blue');
    };
  } else {
    const { TransformPool } = require(path.join(DIST, 'threads', 'transform-pool'));
    const pool = new TransformPool({ size: threads, codec: CODEC });
    // As in the worker: two tasks per thread at most, one in the thread and one waiting for it.
    runAll = async () => {
      let next = 0;
      const lane = async () => {
        while (next < files.length) await pool.run(job(files[next++]));
      };
      await Promise.all(Array.from({ length: threads * 2 }, lane));
    };
    close = () => pool.close();
  }
  await runAll(); // warm-up: threads started, code compiled
  const rates = [];
  for (let rep = 0; rep < reps; rep++) {
    const started = process.hrtime.bigint();
    await runAll();
    rates.push(files.length / (Number(process.hrtime.bigint() - started) / 1e9));
  }
  await close();
  // maxRSS: the process's peak resident set (every thread's memory is the process's), in KiB.
  console.log(JSON.stringify({ rates, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function main() {
  const [width, height] = option('size', '512x512').split('x').map(Number);
  const count = Number(option('count', '20'));
  const reps = Number(option('reps', '5'));
  const threads = option('threads', '1,2').split(',').map(Number);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-pool-'));
  try {
    const png = require('@jimp/js-png').default();
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const encoded = png.encode(photoLike(width, height, i + 1), {
        deflateLevel: 6,
        deflateStrategy: 0,
        colorType: 2,
        inputHasAlpha: true,
      });
      fs.writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}.png`), encoded);
      bytes += encoded.length;
    }
    console.log(
      `${count} photo-like PNGs of ${width}x${height}, ${Math.round(bytes / count / 1024)} KiB each; ` +
        `${os.availableParallelism()} cores; ${reps} repetitions after a warm-up`,
    );
    for (const size of [0, ...threads]) {
      const output = execFileSync(process.execPath, [__filename, '--child', dir, String(size), String(reps)], { encoding: 'utf8' });
      const { rates, peakRssMb } = JSON.parse(output.trim().split('\n').pop());
      const label = size === 0 ? 'main thread, one by one' : `pool of ${size} thread${size > 1 ? 's' : ''}`;
      console.log(
        `${label.padEnd(24)} ${median(rates).toFixed(1).padStart(6)} images/s ` +
          `(${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)}), peak RSS ${Math.round(peakRssMb)} MB`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]), Number(process.argv[5])).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main();
}
