// Measures the worker process's own CPU per image under a steady stream of tasks: the built
// worker (dist/main.js) runs as its own process against a bare node:http master and storage in
// this process, which answer at once (a task always ready, the source always there), so the
// worker's threads are never starved and nothing else competes for its CPU but this script.
// Prints, per repetition: images/s, the worker process's CPU per image (all its threads), its
// main thread's CPU per image (HTTP, the loops, moving bytes to and from the threads: the
// overhead), and the image work's CPU per image measured in this process with the same codec.
// Needs the build (npm run build).
//   node apps/worker/scripts/measure-worker-overhead.js [--count 200] [--reps 3] [--size 512x512] [--dist DIR]
//     [--kind photo|screen] [--cpu-prof DIR] [--node-args '--trace-gc'] [--stdout FILE] [--env KEY=VALUE ...]
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { photoPngs } = require('../../../bench/test-images');
const { screenPngs } = require('./screen-images');

const DIST = path.resolve(option('dist', path.resolve(__dirname, '..', 'dist')));
const CLOCK_TICKS = 100; // USER_HZ: the unit of utime and stime in /proc

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}
const envOptions = () =>
  Object.fromEntries(
    process.argv.flatMap((arg, i) => (arg === '--env' ? [process.argv[i + 1].split('=')] : [])).map(([k, ...v]) => [k, v.join('=')]),
  );

/** CPU milliseconds of each thread of a process, by thread id, with its name. */
function threadCpuMs(pid) {
  const threads = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      threads.set(tid, { name, ms: cpuMs(pid, tid) });
    } catch {
      // the thread ended meanwhile
    }
  }
  return threads;
}

/** CPU per image by thread name, between two threadCpuMs snapshots. */
function byName(before, after, done) {
  const totals = {};
  for (const [tid, { name, ms }] of after) {
    const key = Number(tid) === before.pid ? 'main' : name;
    totals[key] = (totals[key] ?? 0) + (ms - (before.get(tid)?.ms ?? 0)) / done;
  }
  return Object.entries(totals)
    .filter(([, ms]) => ms >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
    .join(', ');
}

/** CPU milliseconds of a process (all its threads), or of one of its threads. */
function cpuMs(pid, tid) {
  const file = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const fields = fs.readFileSync(file, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** master's worker routes and storage's object routes, bare: every getWork answers a task. */
function startServices(images, onFinished) {
  let served = 0;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const json = (status, body) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'GET' && url.pathname === '/getWork') {
      const id = crypto.randomUUID();
      const { port } = server.address();
      const index = served++ % images.length;
      return json(200, {
        id,
        op: 'swap-red-blue',
        contentType: 'image/png',
        attempt: 1,
        leaseToken: crypto.randomUUID(),
        leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
        sourceUrl: `http://127.0.0.1:${port}/objects/inProgress/${id}?image=${index}&expires=1&signature=x`,
        resultUrl: `http://127.0.0.1:${port}/objects/finished/${id}?expires=1&signature=x`,
      });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/objects/')) {
      const bytes = images[Number(url.searchParams.get('image'))];
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': bytes.length });
      return res.end(bytes);
    }
    const body = await readBody(req);
    if (req.method === 'POST' && url.pathname.startsWith('/objects/')) {
      const key = url.pathname.split('/')[3];
      return json(201, { key, state: 'finished', size: body.length, contentType: 'image/png' });
    }
    if (req.method === 'POST' && url.pathname === '/workFinished') {
      const { id } = JSON.parse(body.toString());
      json(200, { id, state: 'finished' });
      return onFinished();
    }
    if (req.method === 'POST' && url.pathname === '/heartbeat') {
      return json(200, { leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() });
    }
    json(404, { error: { code: 'not_found', message: `${req.method} ${url.pathname}` } });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** CPU per image of the worker's own image code in this process, on one thread. */
async function rawCpuMsPerImage(images, count) {
  const { ImageCodec } = require(path.join(DIST, 'domain', 'image-codec'));
  const { transformImage } = require(path.join(DIST, 'domain', 'image-transformer'));
  const { WorkerConfigSchema } = require(path.join(DIST, 'config'));
  const { decodeLimits } = require(path.join(DIST, 'worker'));
  const config = WorkerConfigSchema.parse(envOptions());
  const codec = new ImageCodec({ pngDeflateLevel: config.PNG_DEFLATE_LEVEL, jpegQuality: config.JPEG_QUALITY, ...decodeLimits(config) });
  for (const image of images.slice(0, 3)) await transformImage(codec, image, 'image/png', 'swap-red-blue');
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await transformImage(codec, images[i % images.length], 'image/png', 'swap-red-blue');
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}

async function main() {
  const count = Number(option('count', 200));
  const reps = Number(option('reps', 3));
  const [width, height] = option('size', '512x512').split('x').map(Number);
  const kind = option('kind', 'photo');
  const profileDir = option('cpu-prof', undefined);
  const images = kind === 'screen' ? screenPngs(width, height, 8) : photoPngs(width, height, 8);
  let finished = 0;
  let waiter;
  const server = await startServices(images, () => {
    finished += 1;
    if (waiter && finished >= waiter.target) waiter.resolve();
  });
  const until = (target) => new Promise((resolve) => (finished >= target ? resolve() : (waiter = { target, resolve })));
  const { port } = server.address();
  const nodeArgs = [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    ...option('node-args', '').split(' ').filter(Boolean),
  ];
  const stdoutFile = option('stdout', undefined);
  const worker = spawn(process.execPath, [...nodeArgs, path.join(DIST, 'main.js')], {
    env: {
      ...process.env,
      MASTER_URL: `http://127.0.0.1:${port}`,
      KV_URL: `http://127.0.0.1:${port}`,
      // As the stack runs it: a line per task at info, a token on every call to master.
      LOG_LEVEL: 'info',
      WORKER_TOKEN: crypto.randomBytes(24).toString('base64url'),
      WORKER_CONCURRENCY: '2',
      ...envOptions(),
    },
    stdio: ['ignore', stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe', 'inherit'],
  });
  worker.stdout?.resume();
  const pid = worker.pid;
  const average = (k) => images.reduce((sum, image) => sum + image.length, 0) / images.length / k;
  console.log(`${kind} ${width}x${height}, sources ${average(1024).toFixed(0)} KB on average; ${reps} × ${count} images`);
  await until(20); // warm-up: threads started, code compiled
  for (let rep = 0; rep < reps; rep++) {
    const start = finished;
    const [all, main, wall] = [cpuMs(pid), cpuMs(pid, pid), performance.now()];
    const threadsBefore = Object.assign(threadCpuMs(pid), { pid });
    await until(start + count);
    const done = finished - start;
    const seconds = (performance.now() - wall) / 1000;
    console.log(
      `rep ${rep + 1}: ${(done / seconds).toFixed(1)} img/s, worker ${((cpuMs(pid) - all) / done).toFixed(1)} ms CPU/img, ` +
        `of which main thread ${((cpuMs(pid, pid) - main) / done).toFixed(2)} ms`,
    );
    if (process.argv.includes('--threads')) console.log(`  by thread: ${byName(threadsBefore, threadCpuMs(pid), done)}`);
  }
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.on('exit', resolve));
  server.close();
  server.closeAllConnections();
  console.log(`image work alone: ${(await rawCpuMsPerImage(images, 40)).toFixed(1)} ms CPU/img (one thread, this process)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
