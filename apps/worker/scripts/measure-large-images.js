// Measures the worker's transform of the images of issue 8 (a 35-byte GIF with a 65535×65535
// frame, a 7000×7000 gradient JPEG, a 16384×3000 16-bit PNG, and more with --all): wall time,
// the outcome, the process's peak RSS and its RSS when idle afterwards. Each image runs in a fresh
// process through the transform pool, configured as createWorker() would be for the environment
// given (WORKER_MEMORY_MB, TRANSFORM_TIMEOUT_MS, …), and the estimate of planDecode beside
// the measured peak. Needs the build (npm run build). The large images are made once, in a cache
// folder of the system's temporary directory.
// With --copies N, N copies at once on N threads, admitted by the memory budget as the work loop
// admits them (WORKER_MEMORY_MB=2048 lets one 7000×7000 JPEG in at a time).
//   node apps/worker/scripts/measure-large-images.js [--only gif,jpeg,png16,png-noise,png-interlaced,bmp,gif-large] [--idle-ms 3000] [--copies 2]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const DIST = path.resolve(__dirname, '..', 'dist');
const CACHE = path.join(os.tmpdir(), 'pixelmill-large-images');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

/** A PNG chunk: length, type, data, CRC of type and data. */
function pngChunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG of raw rows (filter 0) built by the caller: colour type, bit depth and interlace as given. */
function png(width, height, { depth, colorType, interlace = 0 }, rows) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  ihdr[12] = interlace;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(rows, { level: 6 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const IMAGES = {
  /** The finding's 35 bytes: a 1×1 screen, one frame of 65535×65535, a few bytes of LZW. */
  gif: () => ({
    type: 'image/gif',
    bytes: Buffer.concat([
      Buffer.from('GIF89a', 'latin1'),
      Buffer.from([1, 0, 1, 0, 0x80, 0, 0]), // 1×1 screen, a global palette of 2 colours
      Buffer.from([0, 0, 0, 255, 255, 255]),
      Buffer.from([0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0]), // frame at 0,0 of 65535×65535
      Buffer.from([2, 2, 0x4c, 0x01, 0, 0x3b]), // LZW: code size 2, one sub-block, end, trailer
    ]),
  }),
  jpeg: () => {
    const file = path.join(CACHE, 'gradient-7000x7000.jpg');
    if (!fs.existsSync(file)) {
      const jpegJs = require('jpeg-js');
      const [width, height] = [7000, 7000];
      const data = Buffer.alloc(width * height * 4);
      for (let y = 0, i = 0; y < height; y++) {
        for (let x = 0; x < width; x++, i += 4) {
          data[i] = (x * 255) / width;
          data[i + 1] = (y * 255) / height;
          data[i + 2] = ((x + y) * 255) / (width + height);
          data[i + 3] = 255;
        }
      }
      fs.writeFileSync(file, jpegJs.encode({ data, width, height }, 90).data);
    }
    return { type: 'image/jpeg', bytes: fs.readFileSync(file) };
  },
  png16: () => {
    const file = path.join(CACHE, 'gradient-16384x3000-16bit.png');
    if (!fs.existsSync(file)) {
      const [width, height] = [16384, 3000];
      const rowBytes = 1 + width * 8;
      const rows = Buffer.alloc(rowBytes * height);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const i = y * rowBytes + 1 + x * 8;
          rows.writeUInt16BE(x * 4, i);
          rows.writeUInt16BE(y * 21, i + 2);
          rows.writeUInt16BE(30000, i + 4);
          rows.writeUInt16BE(65535, i + 6);
        }
      }
      fs.writeFileSync(file, png(width, height, { depth: 16, colorType: 6 }, rows));
    }
    return { type: 'image/png', bytes: fs.readFileSync(file) };
  },
};

/** A cached file, made by `make` (maybe async) the first time. */
async function cached(name, type, make) {
  const file = path.join(CACHE, name);
  if (!fs.existsSync(file)) fs.writeFileSync(file, await make());
  return { type, bytes: fs.readFileSync(file) };
}

const SIDE = 7000;

Object.assign(IMAGES, {
  /** Noise: the slowest PNG to deflate, at the largest size allowed. */
  'png-noise': () =>
    cached('noise-7000x7000.png', 'image/png', () => {
      const rowBytes = 1 + SIDE * 3;
      const rows = Buffer.alloc(rowBytes * SIDE);
      let state = 1;
      for (let i = 0; i < rows.length; i++) {
        state = (state * 1103515245 + 12345) >>> 0;
        rows[i] = i % rowBytes === 0 ? 0 : state >>> 24;
      }
      return png(SIDE, SIDE, { depth: 8, colorType: 2 }, rows);
    }),
  /** Adam7: pngjs inflates it without a bound. */
  'png-interlaced': () =>
    cached('interlaced-7000x7000.png', 'image/png', () => {
      const passes = [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ];
      const parts = [];
      for (const [x0, y0, dx, dy] of passes) {
        const [w, h] = [Math.ceil((SIDE - x0) / dx), Math.ceil((SIDE - y0) / dy)];
        const pass = Buffer.alloc((1 + w * 4) * h, 0x7f);
        for (let y = 0; y < h; y++) pass[y * (1 + w * 4)] = 0;
        parts.push(pass);
      }
      return png(SIDE, SIDE, { depth: 8, colorType: 6, interlace: 1 }, Buffer.concat(parts));
    }),
  bmp: () =>
    cached('gradient-7000x7000.bmp', 'image/bmp', () => {
      const rowBytes = Math.ceil((SIDE * 3) / 4) * 4;
      const header = Buffer.alloc(54);
      header.write('BM', 0, 'latin1');
      header.writeUInt32LE(54 + rowBytes * SIDE, 2);
      header.writeUInt32LE(54, 10);
      header.writeUInt32LE(40, 14);
      header.writeInt32LE(SIDE, 18);
      header.writeInt32LE(SIDE, 22);
      header.writeUInt16LE(1, 26);
      header.writeUInt16LE(24, 28);
      header.writeUInt32LE(rowBytes * SIDE, 34);
      const pixels = Buffer.alloc(rowBytes * SIDE);
      for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE * 3; x++) pixels[y * rowBytes + x] = (x + y) & 0xff;
      return Buffer.concat([header, pixels]);
    }),
  'gif-large': () =>
    cached('bands-7000x7000.gif', 'image/gif', () => {
      const { GifCodec, GifFrame } = require('gifwrap');
      const data = Buffer.alloc(SIDE * SIDE * 4, 255);
      for (let i = 0; i < data.length; i += 4) data[i] = ((i >> 2) % SIDE) & 0xf0;
      return new GifCodec().encodeGif([new GifFrame({ width: SIDE, height: SIDE, data })], {}).then((gif) => gif.buffer);
    }),
});

/** One image, in this (fresh) process: prints one JSON line. */
async function child(name) {
  const { WorkerConfigSchema } = require(path.join(DIST, 'config'));
  const { createTransformPool, decodeLimits } = require(path.join(DIST, 'worker'));
  const { planDecode } = require(path.join(DIST, 'domain', 'decode-plan'));
  const { MemoryBudget } = require(path.join(DIST, 'loop', 'memory-budget'));
  const { parseConfig } = require('@pixelmill/kit');
  const copies = Number(option('copies', '1'));
  const config = parseConfig(WorkerConfigSchema, { ...process.env, WORKER_CONCURRENCY: String(copies) });
  const budget = new MemoryBudget(decodeLimits(config).maxMemoryBytes);
  const { type, bytes } = await IMAGES[name]();
  const bytesIn = bytes.length; // the source moves to the thread
  let memoryBytes;
  let estimate;
  try {
    memoryBytes = planDecode(bytes, type, decodeLimits(config)).memoryBytes;
    estimate = Math.round(memoryBytes / 2 ** 20);
  } catch (err) {
    estimate = `refused: ${err.message}`; // the pool's thread refuses it the same way
  }
  const pool = createTransformPool(config);
  await new Promise((resolve) => setTimeout(resolve, 500)); // the thread loads its codecs
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  const transform = async () => {
    const memory = memoryBytes === undefined ? undefined : await budget.take(memoryBytes, new AbortController().signal);
    try {
      const output = await pool.run({ source: Buffer.from(bytes), contentType: type, op: 'swap-red-blue' });
      return `finished, ${output.bytes.length} bytes out`;
    } catch (err) {
      return `${err.name}: ${err.message}`;
    } finally {
      memory?.release();
    }
  };
  const outcome = (await Promise.all(Array.from({ length: copies }, transform))).join('; ');
  const ms = Math.round(performance.now() - started);
  clearInterval(sampler);
  await new Promise((resolve) => setTimeout(resolve, Number(option('idle-ms', '3000'))));
  const mb = (bytes) => Math.round(bytes / 2 ** 20);
  const idle = process.memoryUsage().rss;
  console.log(
    JSON.stringify({
      name,
      copies,
      bytesIn,
      estimateMb: estimate,
      ms,
      outcome,
      rssBeforeMb: mb(before),
      peakRssMb: mb(peak),
      maxRssMb: mb(process.resourceUsage().maxRSS * 1024),
      idleRssMb: mb(idle),
    }),
  );
  await pool.close();
}

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  fs.mkdirSync(CACHE, { recursive: true });
  const names = option('only', Object.keys(IMAGES).join(',')).split(',');
  for (const name of names) {
    await IMAGES[name](); // made once, outside the measured process
    const line = execFileSync(process.execPath, ['--expose-gc', __filename, '--child', name, ...process.argv.slice(2)], {
      encoding: 'utf8',
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.stdout.write(line);
  }
}

Promise.resolve(main()).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
