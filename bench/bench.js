#!/usr/bin/env node
// pixelmill's benchmark (issue 4). Starts the built stack as separate processes on free ports
// with a temporary data folder, makes its own deterministic images and measures, per repetition:
//   1. the raw limit: the worker's own decode → operation → encode in threads of this process;
//   2. pipeline throughput through the frontend with concurrent clients, and its ratio to (1);
//   3. idle latency, upload → `finished` seen by the client, one image at a time;
//   4. CPU time per image of everything but the worker (/proc/<pid>/stat);
//   5. peak RSS of each service, and RSS growth of frontend and storage for one 25 MB image;
//   6. CPU time per call of kit's contract client, in this process, against kv and storage;
//   7. the floor (bench/floor.js): bare node:http servers doing exactly the I/O of each service for
//      an image, driven like the pipeline (512×512 and 1920×1080); their CPU per image beside the
//      services'; the same floor with the image work (its worker transforms in the worker's own
//      threads): the throughput and idle latency this machine allows with only the hops' I/O
//      around the transform, and the floor's CPU when it shares the cores with the transforms;
//      and the same floor on express and axios (the design card's HTTP packages, nothing of
//      pixelmill's): what those packages cost by themselves beside the bare floor;
//   8. `npm start`'s defaults: a fresh stack as npm start runs it with nothing set, one client's
//      batch of uploads as fast as it can (bench/start-defaults.js).
// Prints a table (stdout; progress goes to stderr) and writes a JSON file.
//
//   node bench/bench.js [--tiny] [--reps N] [--out FILE] [--worker-concurrency N] [--keep]
//   node bench/bench.js --scale [...]    the scale measurements instead: see bench/scale.js
//
// It runs the build in apps/*/dist: `npm run bench` builds first.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadAverage, describeMachine, describeSource, logTails } = require('./run-info');

const ROOT = path.resolve(__dirname, '..');
const SERVICES = ['kv', 'taskdb', 'storage', 'master', 'frontend', 'worker'];
/** Everything but the worker: the cost of the microservice pipeline itself. */
const PLUMBING = ['frontend', 'master', 'storage', 'taskdb', 'kv'];
/** The services a 25 MB image goes through, from the client in. */
const BIG_IMAGE_PATH = ['frontend', 'master', 'storage'];
const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;
const MB = 1e6;

const USAGE = `usage: node bench/bench.js [options]
  --tiny                  a few images, 1 repetition (CI: keeps the benchmark working)
  --reps N                repetitions of every measurement (default 3)
  --out FILE              where to write the JSON results (default bench/results.json)
  --worker-concurrency N  WORKER_CONCURRENCY of the worker (default: the worker's own default)
  --keep                  keep the temporary data and log folder
  --scale                 the scale measurements instead (bench/scale.js; --scale --help for its options)
`;

/** What one run does; --tiny keeps only enough of each to produce every figure. */
const PLANS = {
  full: {
    reps: 3,
    png512: 100,
    png1080: 24,
    clients: 8,
    idle: 20,
    // Enough images for the services' code to be compiled hot before the first repetition counts.
    warmup: 40,
    // The 25 MB image's fresh processes take a few first: its growth is measured from there.
    bigWarmup: 4,
    single512: 10,
    single1080: 3,
    distinct512: 4,
    distinct1080: 2,
    bigBytes: 25 * MB,
    bigWaitMs: 120_000,
    idleWindowMs: 3_000,
    floorImages: 100,
    floor1080Images: 24,
    floorWarmup: 40,
    defaultsUploads: 500,
  },
  tiny: {
    reps: 1,
    png512: 8,
    png1080: 2,
    clients: 8,
    idle: 3,
    warmup: 2,
    bigWarmup: 2,
    single512: 3,
    single1080: 1,
    distinct512: 2,
    distinct1080: 1,
    bigBytes: 25 * MB,
    bigWaitMs: 60_000,
    idleWindowMs: 1_000,
    floorImages: 24,
    floor1080Images: 4,
    floorWarmup: 8,
    defaultsUploads: 50,
  },
};

function parseArgs(argv) {
  const args = { tiny: false, reps: undefined, out: path.join(__dirname, 'results.json'), workerConcurrency: undefined, keep: false };
  const positiveInt = (flag, value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a positive integer, got "${value}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--tiny') args.tiny = true;
    else if (arg === '--reps') args.reps = positiveInt(arg, value());
    else if (arg === '--out') args.out = path.resolve(value());
    else if (arg === '--worker-concurrency') args.workerConcurrency = positiveInt(arg, value());
    else if (arg === '--keep') args.keep = true;
    else if (arg === '--help' || arg === '-h') args.help = true;
    else throw new UsageError(`unknown option ${arg}`);
  }
  return args;
}

class UsageError extends Error {}

/** The `synchronous` of taskdb's SQLite as the benchmark's stack runs it (its default): the floor commits the same way. */
function taskdbSynchronous() {
  const { TaskdbConfigSchema } = require(path.join(ROOT, 'apps', 'taskdb', 'dist', 'config.js'));
  return TaskdbConfigSchema.shape.SQLITE_SYNCHRONOUS.parse(undefined);
}

/** The benchmark runs the built services and the worker's built code: say how to build if missing. */
function checkBuilt() {
  const needed = [...SERVICES.map((app) => `apps/${app}/dist/main.js`), 'packages/kit/dist/index.js', 'packages/contracts/dist/index.js'];
  const missing = needed.filter((file) => !fs.existsSync(path.join(ROOT, file)));
  if (missing.length > 0) {
    throw new UsageError(`the build is missing (${missing.join(', ')}): run \`npm run build\` first, or \`npm run bench\`, which builds`);
  }
}

const startedAt = Date.now();
const log = (message) => process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);

/** Uploads `count` images with `clients` concurrent clients, each waiting for its image to finish. */
async function runPipeline(client, images, count, clients) {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(clients, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const id = await client.upload(images[i % images.length]);
        const status = await client.waitUntilDone(id);
        if (status.state !== 'finished') throw new Error(`image ${id} ${status.state}: ${status.error ?? ''}`);
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The pause before each image of the idle latency (the pipeline's and its floor's). */
const IDLE_PAUSE_MS = 100;

/** Upload → finished, in ms, one image at a time with a pause between, so each meets an idle stack. */
async function idleLatencies(client, images, count, sleep) {
  const latencies = [];
  for (let i = 0; i < count; i++) {
    await sleep(IDLE_PAUSE_MS);
    const started = process.hrtime.bigint();
    const id = await client.upload(images[i % images.length]);
    const status = await client.waitUntilDone(id);
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (status.state !== 'finished') throw new Error(`image ${id} ${status.state}: ${status.error ?? ''}`);
  }
  return latencies;
}

const difference = (after, before, names) => names.reduce((sum, name) => sum + (after[name] - before[name]), 0);
const maxOf = (...maps) => Object.fromEntries(Object.keys(maps[0]).map((name) => [name, Math.max(...maps.map((m) => m[name]))]));

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  checkBuilt();
  // Loaded only now: they need the build.
  const { startStack } = require('../scripts/stack');
  const { ProcessMeter, clockTicksPerSecond } = require('./process-meter');
  const { PixelmillClient, storageObjectLength, sleep, closeConnections } = require('./pixelmill-client');
  const { RawPool, singleImageTimes } = require('./raw-limit');
  const { photoPngs, noisePng } = require('./test-images');
  const { workerDefaults, codecOptionsOf, createTransform, createThreadTransform } = require('./worker-code');
  const { median, percentile, summarize } = require('./stats');
  const { TABLE_HEADER, FLOOR_TABLE_HEADER, tableCells, floorCells, markdownTable, isMet } = require('./report');
  const { CLIENT_PLANS, BINARY_BYTES, measureClientCost, clientCostRows, recordClientCost } = require('./client-cost');
  const { FLOOR_SERVICES, startFloor, driveFloor, floorIdleLatencies } = require('./floor');
  const { startDefaultsOptions, uploadBurst } = require('./start-defaults');

  const plan = { ...PLANS[args.tiny ? 'tiny' : 'full'], ...(args.reps ? { reps: args.reps } : {}) };
  const machine = describeMachine();
  const source = describeSource();
  const workerConfig = workerDefaults();
  const codecOptions = codecOptionsOf(workerConfig);
  const rawThreads = os.availableParallelism();
  const workerConcurrency = args.workerConcurrency ?? workerConfig.WORKER_CONCURRENCY;
  const reps = Array.from({ length: plan.reps }, (_, r) => r);

  log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')}`,
  );
  log(
    `plan: ${args.tiny ? 'tiny' : 'full'}, ${plan.reps} repetition(s); worker concurrency ${workerConcurrency}, raw limit on ${rawThreads} thread(s)`,
  );

  log('making test images');
  const images = {
    png512: photoPngs(512, 512, plan.distinct512, 1),
    png1080: photoPngs(1920, 1080, plan.distinct1080, 101),
  };
  const big = noisePng(plan.bigBytes, 7);
  const sizeOf = (set) => Math.round(median(set.map((b) => b.length)));
  log(
    `images: 512×512 PNG ${(sizeOf(images.png512) / 1024).toFixed(0)} KiB, 1920×1080 PNG ${(sizeOf(images.png1080) / 1024).toFixed(0)} KiB, big ${big.width}×${big.height} PNG ${(big.bytes.length / MB).toFixed(1)} MB`,
  );

  // Per repetition: arrays of values, summarized at the end.
  const values = {};
  const record = (id, value) => (values[id] ??= []).push(value);

  // 1. Raw limit, before the stack starts: nothing else runs.
  const transform = createTransform(codecOptions);
  for (const r of reps) {
    record('raw.png512.singleImageMs', median(await singleImageTimes(transform, images.png512, plan.single512)));
    record('raw.png1080.singleImageMs', median(await singleImageTimes(transform, images.png1080, plan.single1080)));
    log(
      `raw single image, rep ${r + 1}: 512² ${values['raw.png512.singleImageMs'][r].toFixed(1)} ms, 1080p ${values['raw.png1080.singleImageMs'][r].toFixed(1)} ms`,
    );
  }
  // The floor's worker uploads a real result (the worker's output for a source): its size matters, not its making.
  const floorResults = { png512: await transform(images.png512[0]), png1080: await transform(images.png1080[0]) };
  const pool = await RawPool.start({ threads: rawThreads, sets: images, codecOptions });
  try {
    for (const r of reps) {
      for (const set of ['png512', 'png1080']) {
        // The threads are this process's: its CPU time is theirs, GC helpers included.
        const cpuBefore = process.cpuUsage();
        record(`raw.${set}.imagesPerSecond`, plan[set] / (await pool.run(set, plan[set])));
        const cpu = process.cpuUsage(cpuBefore);
        record(`raw.${set}.cpuMsPerImage`, (cpu.user + cpu.system) / 1000 / plan[set]);
      }
      log(
        `raw limit, rep ${r + 1}: 512² ${values['raw.png512.imagesPerSecond'][r].toFixed(1)} img/s, 1080p ${values['raw.png1080.imagesPerSecond'][r].toFixed(2)} img/s`,
      );
    }
  } finally {
    await pool.close();
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-bench-'));
  const logDir = path.join(dir, 'logs');
  let stack;
  let floor;
  /** The same floor on express and axios (the design card's HTTP packages, nothing of pixelmill's). */
  let floorFramework;
  /** The worker's transform threads, for the floor's image work. */
  let floorThreads;
  let stopping;
  let removing;
  /** Stops what runs (the stack, the floor), however it is reached: every caller awaits the same stop. */
  const stopRunning = () =>
    (stopping ??= (async () => {
      if (stack || floor) log('stopping the stack');
      // Requests still in flight (long polls) would hold each server's shutdown up.
      closeConnections();
      await floor?.stop();
      await floorFramework?.stop();
      await floorThreads?.close();
      await stack?.stop();
      floor = undefined;
      floorFramework = undefined;
      floorThreads = undefined;
      stack = undefined;
    })().finally(() => (stopping = undefined)));
  // One cleanup, however it is reached (the end, an error, a signal): every caller awaits it.
  const cleanup = () =>
    (removing ??= (async () => {
      await stopRunning();
      if (args.keep) log(`kept ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    })());
  let interrupted = false;
  const onSignal = (signal) => {
    interrupted = true;
    log(`${signal}: stopping`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let longPoll;
  let peakMethod;
  let startDefaults;
  const bigImage = { downloads: [] };
  try {
    log('starting the stack');
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir,
      freePorts: true,
      env: { LOG_LEVEL: 'warn' },
      envFor: {
        frontend: { UPLOAD_RATE_PER_MINUTE: '0', MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) },
        master: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) },
        ...(args.workerConcurrency ? { worker: { WORKER_CONCURRENCY: String(args.workerConcurrency) } } : {}),
      },
    });
    const meter = new ProcessMeter(Object.fromEntries(SERVICES.map((name) => [name, stack.processes[name].child.pid])));
    const client = new PixelmillClient(stack.urls.frontend);
    longPoll = await client.detectLongPoll();
    log(`stack up; the frontend ${longPoll ? 'long-polls isReady (waitMs)' : 'has no waitMs on isReady: polling every 20 ms'}`);
    floor = await startFloor({ dataDir: path.join(dir, 'floor'), logDir, sqliteSynchronous: taskdbSynchronous() });
    const floorMeter = new ProcessMeter(floor.pids);
    floorFramework = await startFloor({
      dataDir: path.join(dir, 'floor-express'),
      logDir,
      sqliteSynchronous: taskdbSynchronous(),
      framework: true,
    });
    const frameworkMeter = new ProcessMeter(floorFramework.pids);
    const floorPlans = {
      png512: { sources: images.png512, result: floorResults.png512, concurrency: plan.clients, count: plan.floorImages },
      png1080: { sources: images.png1080, result: floorResults.png1080, concurrency: plan.clients, count: plan.floor1080Images },
    };
    // The floor with the image work: its worker transforms each source in the worker's own threads.
    floorThreads = createThreadTransform({ ...workerConfig, WORKER_CONCURRENCY: workerConcurrency });
    const transform = floorThreads.run;
    const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
    log(
      `floor up (${FLOOR_SERVICES.join(', ')}: bare node:http); its result uploads ${kib(floorResults.png512.length)} (512²), ${kib(floorResults.png1080.length)} (1080p)`,
    );

    log('warming up');
    await runPipeline(client, images.png512, plan.warmup, plan.clients);
    await runPipeline(client, images.png1080, 1, 1);
    await driveFloor(floor.urls, { ...floorPlans.png512, count: plan.floorWarmup });
    await driveFloor(floor.urls, { ...floorPlans.png1080, count: 1 });
    await driveFloor(floor.urls, { ...floorPlans.png512, count: plan.floorWarmup, transform });
    await driveFloor(floorFramework.urls, { ...floorPlans.png512, count: plan.floorWarmup });
    await driveFloor(floorFramework.urls, { ...floorPlans.png1080, count: 1 });
    await driveFloor(floorFramework.urls, { ...floorPlans.png512, count: plan.floorWarmup, transform });

    for (const r of reps) {
      // 7. The floor, just before the pipeline's runs it is set beside.
      for (const set of ['png512', 'png1080']) {
        const { count } = floorPlans[set];
        const floorBefore = floorMeter.cpuMs();
        const floorSeconds = await driveFloor(floor.urls, floorPlans[set]);
        const floorAfter = floorMeter.cpuMs();
        record(`floor.${set}.imagesPerSecond`, count / floorSeconds);
        record(`floor.${set}.cpuMsPerImage`, difference(floorAfter, floorBefore, FLOOR_SERVICES) / count);
        for (const name of PLUMBING) {
          const used = FLOOR_SERVICES.includes(name) ? floorAfter[name] - floorBefore[name] : 0;
          record(`floor.${set}.${name}.cpuMsPerImage`, used / count);
        }
        log(
          `floor ${set}, rep ${r + 1}: ${(count / floorSeconds).toFixed(1)} img/s, ${values[`floor.${set}.cpuMsPerImage`][r].toFixed(2)} ms CPU/img`,
        );
        // The same hops on express and axios: what the design card's HTTP packages cost by themselves.
        const frameworkBefore = frameworkMeter.cpuMs();
        const frameworkSeconds = await driveFloor(floorFramework.urls, floorPlans[set]);
        const frameworkAfter = frameworkMeter.cpuMs();
        record(`floorFramework.${set}.imagesPerSecond`, count / frameworkSeconds);
        record(`floorFramework.${set}.cpuMsPerImage`, difference(frameworkAfter, frameworkBefore, FLOOR_SERVICES) / count);
        for (const name of PLUMBING) {
          const used = FLOOR_SERVICES.includes(name) ? frameworkAfter[name] - frameworkBefore[name] : 0;
          record(`floorFramework.${set}.${name}.cpuMsPerImage`, used / count);
        }
        log(
          `floor on express + axios ${set}, rep ${r + 1}: ${(count / frameworkSeconds).toFixed(1)} img/s, ${values[`floorFramework.${set}.cpuMsPerImage`][r].toFixed(2)} ms CPU/img`,
        );
        // The same with the image work: what this machine does with every hop bare and only the
        // worker's own transform added, its servers sharing the cores with it as the pipeline's do.
        const workCount = plan[set];
        const workBefore = floorMeter.cpuMs();
        const workSeconds = await driveFloor(floor.urls, { ...floorPlans[set], count: workCount, transform });
        record(`floorWork.${set}.imagesPerSecond`, workCount / workSeconds);
        record(`floorWork.${set}.cpuMsPerImage`, difference(floorMeter.cpuMs(), workBefore, FLOOR_SERVICES) / workCount);
        log(
          `floor with the image work ${set}, rep ${r + 1}: ${(workCount / workSeconds).toFixed(2)} img/s, ${values[`floorWork.${set}.cpuMsPerImage`][r].toFixed(2)} ms CPU/img`,
        );
        // And on express + axios: the throughput the design card's HTTP packages allow around the work.
        const frameworkWorkSeconds = await driveFloor(floorFramework.urls, { ...floorPlans[set], count: workCount, transform });
        record(`floorFrameworkWork.${set}.imagesPerSecond`, workCount / frameworkWorkSeconds);
        log(`floor on express + axios with the image work ${set}, rep ${r + 1}: ${(workCount / frameworkWorkSeconds).toFixed(2)} img/s`);
      }

      // 2. Pipeline throughput, with 4. the plumbing's CPU time across it.
      const peaks = [];
      for (const [set, count] of [
        ['png512', plan.png512],
        ['png1080', plan.png1080],
      ]) {
        const cpuBefore = meter.cpuMs();
        const clientBefore = process.cpuUsage();
        const machineBefore = meter.machineBusyMs();
        const watch = meter.watchPeakRss();
        peakMethod = watch.method;
        const seconds = await runPipeline(client, images[set], count, plan.clients);
        const peak = watch.stop();
        const cpuAfter = meter.cpuMs();
        const clientCpu = process.cpuUsage(clientBefore);
        // CPU the rest of the machine took meanwhile: on a shared machine, figures drop with it.
        const ours = difference(cpuAfter, cpuBefore, SERVICES) + (clientCpu.user + clientCpu.system) / 1000;
        const others = meter.machineBusyMs() - machineBefore - ours;
        record(`machine.${set}.otherCpuPercent`, Math.max(0, (100 * others) / (seconds * 1000 * machine.cores)));
        peaks.push(peak);
        const rate = count / seconds;
        record(`pipeline.${set}.imagesPerSecond`, rate);
        record(`plumbing.${set}.cpuMsPerImage`, difference(cpuAfter, cpuBefore, PLUMBING) / count);
        for (const name of PLUMBING) record(`plumbing.${set}.${name}.cpuMsPerImage`, (cpuAfter[name] - cpuBefore[name]) / count);
        record(`worker.${set}.cpuMsPerImage`, (cpuAfter.worker - cpuBefore.worker) / count);
        record(`client.${set}.cpuMsPerImage`, (clientCpu.user + clientCpu.system) / 1000 / count);
        if (set === 'png1080') record('memory.workerPeakRss1080MB', peak.worker / MB);
        log(
          `pipeline ${set}, rep ${r + 1}: ${rate.toFixed(2)} img/s, plumbing ${values[`plumbing.${set}.cpuMsPerImage`][r].toFixed(2)} ms CPU/img`,
        );
      }

      // 3. Idle latency.
      const watch = meter.watchPeakRss();
      const latencies = await idleLatencies(client, images.png512, plan.idle, sleep);
      peaks.push(watch.stop());
      // The plumbing's CPU time with nothing to do (registrations, lease reaper, claim rechecks).
      const idleBefore = meter.cpuMs();
      await sleep(plan.idleWindowMs);
      record('plumbing.idleCpuMsPerSecond', difference(meter.cpuMs(), idleBefore, PLUMBING) / (plan.idleWindowMs / 1000));
      record('idle.latencyMedianMs', median(latencies));
      record('idle.latencyP90Ms', percentile(latencies, 90));
      // Its floor: the same hops on the bare servers, as idle, without and with the image work.
      const idleFloor = { ...floorPlans.png512, count: plan.idle, pauseMs: IDLE_PAUSE_MS };
      const floorLatencies = await floorIdleLatencies(floor.urls, idleFloor);
      const floorWorkLatencies = await floorIdleLatencies(floor.urls, { ...idleFloor, transform });
      record('floor.idleLatencyMedianMs', median(floorLatencies));
      record('floorWork.idleLatencyMedianMs', median(floorWorkLatencies));
      log(
        `idle latency, rep ${r + 1}: median ${median(latencies).toFixed(1)} ms, p90 ${percentile(latencies, 90).toFixed(1)} ms; the floor's hops ${median(floorLatencies).toFixed(1)} ms, with the image work ${median(floorWorkLatencies).toFixed(1)} ms`,
      );

      // 5. Peak RSS of each service over runs 2 and 3.
      const peak = maxOf(...peaks);
      for (const name of SERVICES) record(`memory.peakRss.${name}MB`, peak[name] / MB);
    }

    // 6. What kit's contract client costs its caller, this process, per call.
    const clientPlan = CLIENT_PLANS[args.tiny ? 'tiny' : 'full'];
    const clientImage = noisePng(BINARY_BYTES, 3).bytes;
    // One repetition more than the others, the first, warms up and is not counted.
    for (const r of args.tiny ? reps : [-1, ...reps]) {
      const cost = await measureClientCost({
        kvUrl: stack.urls.kv,
        storageUrl: stack.urls.storage,
        token: stack.tokens?.internal,
        plan: clientPlan,
        image: clientImage,
        keyPrefix: `bench-client-${r + 1}`,
      });
      if (r < 0) continue;
      recordClientCost(cost, 'contractClient', record);
      log(
        `contract client, rep ${r + 1}: ${Object.entries(cost)
          .map(([name, f]) => `${name} ${f.cpuUsPerCall.toFixed(0)} µs`)
          .join(', ')} of CPU per call`,
      );
    }

    // 5. One 25 MB image up through frontend → master → storage, and down again. A process keeps
    // the memory it grew once, so each repetition gets fresh ones, warmed up with small images.
    for (const r of reps) {
      // SIGKILL: a graceful stop would wait for the worker's long poll on master. Nothing is in
      // flight, and the services are built to lose nothing on a kill anyway.
      for (const name of BIG_IMAGE_PATH) await stack.processes[name].stop('SIGKILL');
      for (const name of [...BIG_IMAGE_PATH].reverse()) meter.pids[name] = (await stack.start(name)).child.pid;
      log(`25 MB image, rep ${r + 1}: ${BIG_IMAGE_PATH.join(', ')} restarted`);
      await runPipeline(client, images.png512, plan.bigWarmup, plan.clients);
      await sleep(500);
      const before = meter.rssBytes();
      const watch = meter.watchPeakRss();
      const id = await client.upload(big.bytes);
      const status = await client.waitUntilDone(id, plan.bigWaitMs).catch((err) => ({ state: 'timeout', error: err.message }));
      // The result through the frontend when the worker made one; else the upload, from storage.
      const download =
        status.state === 'finished'
          ? { from: 'frontend /image/get (result)', bytes: await client.downloadLength(id) }
          : {
              from: 'storage inProgress (upload; the task ended ' + status.state + ')',
              bytes: await storageObjectLength(stack.urls.storage, 'inProgress', id, stack.tokens?.internal),
            };
      const peak = watch.stop();
      bigImage.downloads.push(download);
      for (const name of BIG_IMAGE_PATH) record(`memory.bigImage.${name}GrowthMB`, (peak[name] - before[name]) / MB);
      record('memory.bigImage.workerPeakMB', peak.worker / MB);
      log(
        `25 MB image, rep ${r + 1}: growth master ${values['memory.bigImage.masterGrowthMB'][r].toFixed(1)} MB, frontend ${values['memory.bigImage.frontendGrowthMB'][r].toFixed(1)} MB, storage ${values['memory.bigImage.storageGrowthMB'][r].toFixed(1)} MB; downloaded ${(download.bytes / MB).toFixed(1)} MB from ${download.from}`,
      );
    }
    await stopRunning();

    // 8. npm start's defaults: a fresh stack without the benchmark's settings (no upload limit
    // turned off), one client's uploads back to back, 8 at a time, the results not waited for.
    log(`npm start defaults: starting the stack as npm start does with nothing set`);
    stack = await startStack(startDefaultsOptions({ dataDir: path.join(dir, 'defaults'), logDir: path.join(logDir, 'defaults') }));
    startDefaults = await uploadBurst(stack.urls.frontend, images.png512, { uploads: plan.defaultsUploads, concurrency: plan.clients });
    values['startDefaults.acceptedShare'] = [startDefaults.accepted / startDefaults.uploads];
    values['startDefaults.accepted'] = [startDefaults.accepted];
    values['startDefaults.acceptedPerSecond'] = [startDefaults.accepted / startDefaults.seconds];
    values['startDefaults.refused'] = [startDefaults.refused];
    values['startDefaults.refusedWithoutRetryAfter'] = [startDefaults.refusedWithoutRetryAfter];
    if (startDefaults.retryAfterSeconds.length > 0) values['startDefaults.retryAfterSeconds'] = startDefaults.retryAfterSeconds;
    log(
      `npm start defaults: ${startDefaults.accepted} of ${startDefaults.uploads} uploads accepted in ${startDefaults.seconds.toFixed(1)} s, ${startDefaults.refused} refused with 429${startDefaults.retryAfterSeconds.length ? ` (Retry-After ${Math.min(...startDefaults.retryAfterSeconds)}–${Math.max(...startDefaults.retryAfterSeconds)} s)` : ''}${Object.keys(startDefaults.otherStatuses).length ? `, other answers ${JSON.stringify(startDefaults.otherStatuses)}` : ''}`,
    );
  } catch (err) {
    if (interrupted) {
      // What failed is the measurement cut short by the signal: finish stopping, quietly.
      await cleanup();
      process.exit(130);
    }
    const tails = logTails(logDir);
    if (tails) process.stderr.write(`${tails}\n`);
    throw err;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // Figures derived from others, per repetition.
  const rawMedian = (set) => median(values[`raw.${set}.imagesPerSecond`]);
  for (const set of ['png512', 'png1080']) {
    values[`pipeline.${set}.ratioToRaw`] = values[`pipeline.${set}.imagesPerSecond`].map((rate) => rate / rawMedian(set));
  }
  const rawSingle = median(values['raw.png512.singleImageMs']);
  values['idle.overheadMs'] = values['idle.latencyMedianMs'].map((latency) => latency - rawSingle);
  values['floorWork.idleOverheadMs'] = values['floorWork.idleLatencyMedianMs'].map((latency) => latency - rawSingle);
  for (const set of ['png512', 'png1080']) {
    // Each repetition's plumbing beside the floor measured just before it.
    values[`plumbing.${set}.ratioToFloor`] = values[`plumbing.${set}.cpuMsPerImage`].map(
      (cpu, r) => cpu / values[`floor.${set}.cpuMsPerImage`][r],
    );
    values[`plumbing.${set}.ratioToFloorWork`] = values[`plumbing.${set}.cpuMsPerImage`].map(
      (cpu, r) => cpu / values[`floorWork.${set}.cpuMsPerImage`][r],
    );
    values[`floorFramework.${set}.ratioToFloor`] = values[`floorFramework.${set}.cpuMsPerImage`].map(
      (cpu, r) => cpu / values[`floor.${set}.cpuMsPerImage`][r],
    );
    values[`plumbing.${set}.ratioToFrameworkFloor`] = values[`plumbing.${set}.cpuMsPerImage`].map(
      (cpu, r) => cpu / values[`floorFramework.${set}.cpuMsPerImage`][r],
    );
    values[`floorFrameworkWork.${set}.ratioToRaw`] = values[`floorFrameworkWork.${set}.imagesPerSecond`].map(
      (rate) => rate / rawMedian(set),
    );
    values[`floorWork.${set}.ratioToRaw`] = values[`floorWork.${set}.imagesPerSecond`].map((rate) => rate / rawMedian(set));
  }

  const figures = Object.fromEntries(Object.entries(values).map(([id, list]) => [id, summarize(list)]));

  // The issue's targets (issue 11) and its moonshots, on the rows they judge.
  const rows = [
    { id: 'raw.png512.imagesPerSecond', label: `raw limit 512×512 (${rawThreads} threads)`, unit: 'img/s', digits: 1 },
    { id: 'raw.png1080.imagesPerSecond', label: `raw limit 1920×1080 (${rawThreads} threads)`, unit: 'img/s', digits: 2 },
    { id: 'raw.png512.singleImageMs', label: 'raw single image 512×512 (1 thread)', unit: 'ms', digits: 1 },
    { id: 'raw.png1080.singleImageMs', label: 'raw single image 1920×1080 (1 thread)', unit: 'ms', digits: 0 },
    { id: 'raw.png512.cpuMsPerImage', label: 'raw CPU per image 512×512 (its threads, GC included)', unit: 'ms', digits: 1 },
    { id: 'raw.png1080.cpuMsPerImage', label: 'raw CPU per image 1920×1080', unit: 'ms', digits: 0 },
    {
      id: 'pipeline.png512.imagesPerSecond',
      label: `pipeline 512×512 (${plan.png512} images, ${plan.clients} clients)`,
      unit: 'img/s',
      digits: 1,
      target: { cmp: '>', value: 23, note: 'the Go original' },
      moonshot: { cmp: '>=', value: 30 },
    },
    {
      id: 'pipeline.png512.ratioToRaw',
      label: 'pipeline ÷ raw, 512×512',
      unit: '',
      digits: 2,
      target: { cmp: '>=', value: 0.7 },
      moonshot: { cmp: '>=', value: 0.85 },
    },
    {
      id: 'floorWork.png512.imagesPerSecond',
      label: "  the floor with the image work (bare hops, the worker's transform threads), img/s",
      unit: 'img/s',
      digits: 1,
    },
    { id: 'floorWork.png512.ratioToRaw', label: '  the floor with the image work ÷ raw, 512×512', unit: '', digits: 2 },
    {
      id: 'floorFrameworkWork.png512.imagesPerSecond',
      label: '  the same floor on express + axios with the image work, img/s',
      unit: 'img/s',
      digits: 1,
    },
    { id: 'floorFrameworkWork.png512.ratioToRaw', label: '  that floor ÷ raw, 512×512', unit: '', digits: 2 },
    {
      id: 'pipeline.png1080.imagesPerSecond',
      label: `pipeline 1920×1080 (${plan.png1080} images, ${plan.clients} clients)`,
      unit: 'img/s',
      digits: 2,
    },
    {
      id: 'pipeline.png1080.ratioToRaw',
      label: 'pipeline ÷ raw, 1920×1080',
      unit: '',
      digits: 2,
      target: { cmp: '>=', value: 0.85 },
      moonshot: { cmp: '>=', value: 0.95 },
    },
    { id: 'floorWork.png1080.imagesPerSecond', label: '  the floor with the image work, 1920×1080', unit: 'img/s', digits: 2 },
    { id: 'floorWork.png1080.ratioToRaw', label: '  the floor with the image work ÷ raw, 1920×1080', unit: '', digits: 2 },
    {
      id: 'floorFrameworkWork.png1080.imagesPerSecond',
      label: '  the same floor on express + axios with the image work, 1920×1080',
      unit: 'img/s',
      digits: 2,
    },
    { id: 'floorFrameworkWork.png1080.ratioToRaw', label: '  that floor ÷ raw, 1920×1080', unit: '', digits: 2 },
    { id: 'idle.latencyMedianMs', label: `idle latency upload → finished, median (${plan.idle} images)`, unit: 'ms', digits: 1 },
    { id: 'idle.latencyP90Ms', label: 'idle latency, p90', unit: 'ms', digits: 1 },
    {
      id: 'idle.overheadMs',
      label: 'idle latency overhead over raw, median',
      unit: 'ms',
      digits: 1,
      target: { cmp: '<=', value: 25 },
      moonshot: { cmp: '<=', value: 15 },
    },
    {
      id: 'floor.idleLatencyMedianMs',
      label: "  the floor's hops one image at a time, no image work, median",
      unit: 'ms',
      digits: 1,
    },
    {
      id: 'floorWork.idleOverheadMs',
      label: '  the floor with the image work: its idle latency over raw, median',
      unit: 'ms',
      digits: 1,
    },
    {
      id: 'plumbing.png512.cpuMsPerImage',
      label: 'plumbing CPU per image, 512×512 (frontend, master, storage, taskdb, kv)',
      unit: 'ms',
      digits: 2,
      target: { cmp: '<=', value: 15 },
      moonshot: { cmp: '<=', value: 10 },
    },
    ...PLUMBING.map((name) => ({ id: `plumbing.png512.${name}.cpuMsPerImage`, label: `  of which ${name}`, unit: 'ms', digits: 2 })),
    {
      id: 'floor.png512.cpuMsPerImage',
      label: `floor CPU per image, 512×512 (bare node:http, ${plan.floorImages} images, ${plan.clients} in flight)`,
      unit: 'ms',
      digits: 2,
    },
    ...PLUMBING.map((name) => ({ id: `floor.png512.${name}.cpuMsPerImage`, label: `  of which ${name}'s floor`, unit: 'ms', digits: 2 })),
    { id: 'floor.png512.imagesPerSecond', label: 'floor 512×512, img/s (no image work)', unit: 'img/s', digits: 0 },
    {
      id: 'plumbing.png512.ratioToFloor',
      label: 'plumbing ÷ its floor, 512×512',
      unit: '',
      digits: 2,
      target: { cmp: '<=', value: 2.0 },
      moonshot: { cmp: '<=', value: 1.3 },
    },
    {
      id: 'floorWork.png512.cpuMsPerImage',
      label: "floor CPU per image, 512×512, sharing the cores with the worker's transform threads",
      unit: 'ms',
      digits: 2,
    },
    { id: 'plumbing.png512.ratioToFloorWork', label: '  plumbing ÷ that floor', unit: '', digits: 2 },
    {
      id: 'floorFramework.png512.cpuMsPerImage',
      label: "floor CPU per image, 512×512, on express + axios (the same hops, nothing of pixelmill's)",
      unit: 'ms',
      digits: 2,
    },
    { id: 'floorFramework.png512.ratioToFloor', label: '  that floor ÷ the bare floor', unit: '', digits: 2 },
    { id: 'plumbing.png512.ratioToFrameworkFloor', label: '  plumbing ÷ that floor', unit: '', digits: 2 },
    { id: 'plumbing.png1080.cpuMsPerImage', label: 'plumbing CPU per image, 1920×1080', unit: 'ms', digits: 2 },
    {
      id: 'floor.png1080.cpuMsPerImage',
      label: `floor CPU per image, 1920×1080 (${plan.floor1080Images} images, ${plan.clients} in flight)`,
      unit: 'ms',
      digits: 2,
    },
    { id: 'plumbing.png1080.ratioToFloor', label: 'plumbing ÷ its floor, 1920×1080', unit: '', digits: 2 },
    {
      id: 'floorWork.png1080.cpuMsPerImage',
      label: "floor CPU per image, 1920×1080, sharing the cores with the worker's transform threads",
      unit: 'ms',
      digits: 2,
    },
    { id: 'plumbing.png1080.ratioToFloorWork', label: '  plumbing ÷ that floor', unit: '', digits: 2 },
    { id: 'floorFramework.png1080.cpuMsPerImage', label: 'floor CPU per image, 1920×1080, on express + axios', unit: 'ms', digits: 2 },
    { id: 'floorFramework.png1080.ratioToFloor', label: '  that floor ÷ the bare floor', unit: '', digits: 2 },
    { id: 'plumbing.png1080.ratioToFrameworkFloor', label: '  plumbing ÷ that floor', unit: '', digits: 2 },
    { id: 'plumbing.idleCpuMsPerSecond', label: 'plumbing CPU when idle, per second', unit: 'ms', digits: 1 },
    { id: 'worker.png512.cpuMsPerImage', label: 'worker CPU per image, 512×512', unit: 'ms', digits: 1 },
    { id: 'worker.png1080.cpuMsPerImage', label: 'worker CPU per image, 1920×1080', unit: 'ms', digits: 0 },
    { id: 'machine.png512.otherCpuPercent', label: 'machine CPU taken by others (processes, kernel), 512×512 run', unit: '%', digits: 0 },
    { id: 'machine.png1080.otherCpuPercent', label: 'machine CPU taken by others, 1920×1080 run', unit: '%', digits: 0 },
    { id: 'client.png512.cpuMsPerImage', label: 'benchmark client CPU per image, 512×512', unit: 'ms', digits: 2 },
    ...clientCostRows('contractClient'),
    ...SERVICES.map((name) => ({ id: `memory.peakRss.${name}MB`, label: `peak RSS ${name}, runs 2–3`, unit: 'MB', digits: 0 })),
    { id: 'memory.workerPeakRss1080MB', label: 'worker peak RSS, 1920×1080', unit: 'MB', digits: 0 },
    ...['master', 'frontend', 'storage'].map((name) => ({
      id: `memory.bigImage.${name}GrowthMB`,
      label: `${name} RSS growth, 25 MB image`,
      unit: 'MB',
      digits: 1,
      target: { cmp: '<=', value: 40 },
      moonshot: { cmp: '<=', value: 30 },
    })),
    {
      id: 'startDefaults.acceptedShare',
      label: `npm start defaults: share of one client's ${plan.defaultsUploads} uploads accepted (${plan.clients} at a time)`,
      unit: '',
      digits: 2,
      target: { cmp: '>=', value: 1, note: 'all' },
    },
    { id: 'startDefaults.accepted', label: '  uploads accepted (202)', unit: '', digits: 0 },
    { id: 'startDefaults.acceptedPerSecond', label: '  accepted per second', unit: 'img/s', digits: 1 },
    { id: 'startDefaults.refused', label: '  refused by the rate limit (429)', unit: '', digits: 0 },
    { id: 'startDefaults.retryAfterSeconds', label: '  Retry-After of the 429s', unit: 's', digits: 0 },
    { id: 'startDefaults.refusedWithoutRetryAfter', label: '  429s without Retry-After', unit: '', digits: 0 },
    // A figure a run did not produce (no 429, no Retry-After to show) has no row.
  ].filter((row) => figures[row.id] !== undefined);
  for (const row of rows) figures[row.id].unit = row.unit;

  const header = [
    `pixelmill benchmark, ${new Date(startedAt).toISOString()}${args.tiny ? ' (--tiny: NOT the figures of record)' : ''}`,
    `machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.os}; load average at start ${machine.loadAverageAtStart.join(' ')}, at end ${loadAverage().join(' ')}`,
    `worker: WORKER_CONCURRENCY ${workerConcurrency}${args.workerConcurrency ? '' : ' (its default)'}, PNG_DEFLATE_LEVEL ${codecOptions.pngDeflateLevel}; client waits with ${longPoll ? 'isReady long poll (waitMs)' : 'isReady polling every 20 ms'}; ${plan.reps} repetition(s), median and min–max; peak RSS from ${peakMethod}`,
    source
      ? `source: ${source.commit.slice(0, 12)}${source.modified.length ? `, ${source.modified.length} modified file(s) in the work tree` : ', clean work tree'}`
      : undefined,
  ].filter(Boolean);
  const table = markdownTable(TABLE_HEADER, tableCells(rows, figures));
  const floorSide = (set) => markdownTable(FLOOR_TABLE_HEADER, floorCells(PLUMBING, figures, set));
  process.stdout.write(
    `\n${header.join('\n')}\n\n${table}\n\nplumbing CPU per 512×512 image beside its floor (bench/floor.js: bare node:http servers doing each service's I/O) and the same floor on express + axios, medians:\n\n${floorSide('png512')}\n` +
      `\nthe same per 1920×1080 image:\n\n${floorSide('png1080')}\n`,
  );

  const targets = rows
    .filter((row) => row.target)
    .map((row) => ({
      id: row.id,
      label: row.label,
      cmp: row.target.cmp,
      value: row.target.value,
      median: figures[row.id].median,
      met: isMet(row.target, figures[row.id].median),
      ...(row.moonshot
        ? { moonshot: { cmp: row.moonshot.cmp, value: row.moonshot.value, met: isMet(row.moonshot, figures[row.id].median) } }
        : {}),
    }));
  const results = {
    benchmark: 'pixelmill',
    version: 1,
    startedAt: new Date(startedAt).toISOString(),
    durationSeconds: Number(((Date.now() - startedAt) / 1000).toFixed(1)),
    tiny: args.tiny,
    plan,
    machine: { ...machine, loadAverageAtEnd: loadAverage() },
    source,
    settings: {
      rawThreads,
      workerConcurrency,
      workerDefaults: { WORKER_CONCURRENCY: workerConfig.WORKER_CONCURRENCY, PNG_DEFLATE_LEVEL: workerConfig.PNG_DEFLATE_LEVEL },
      longPoll,
      peakRssMethod: peakMethod,
      clockTicksPerSecond: clockTicksPerSecond(),
    },
    images: {
      png512: { width: 512, height: 512, distinct: images.png512.length, medianBytes: sizeOf(images.png512) },
      png1080: { width: 1920, height: 1080, distinct: images.png1080.length, medianBytes: sizeOf(images.png1080) },
      big: { width: big.width, height: big.height, bytes: big.bytes.length, downloads: bigImage.downloads },
      floorResults: { png512Bytes: floorResults.png512.length, png1080Bytes: floorResults.png1080.length },
    },
    floor: {
      services: FLOOR_SERVICES,
      images: plan.floorImages,
      images1080: plan.floor1080Images,
      inFlight: plan.clients,
      idlePauseMs: IDLE_PAUSE_MS,
      sqliteSynchronous: taskdbSynchronous(),
      // What the floor on express + axios ran on.
      framework: { express: require('express/package.json').version, axios: require('axios/package.json').version },
    },
    startDefaults: startDefaults && {
      ...startDefaults,
      // The header of every 429, told as its range: the values themselves are in figures.
      retryAfterSeconds:
        startDefaults.retryAfterSeconds.length > 0
          ? { min: Math.min(...startDefaults.retryAfterSeconds), max: Math.max(...startDefaults.retryAfterSeconds) }
          : undefined,
    },
    figures,
    targets,
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `\n${targets.filter((t) => t.met).length} of ${targets.length} targets met; results in ${path.relative(process.cwd(), args.out) || args.out}\n`,
  );
}

if (process.argv.slice(2).includes('--scale')) {
  // `npm run bench -- --scale`: the scale measurements, a run of their own (bench/scale.js).
  require('./scale').runFromCommandLine(process.argv.slice(2).filter((arg) => arg !== '--scale'));
} else {
  main().catch((err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
