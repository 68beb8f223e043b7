#!/usr/bin/env node
// pixelmill's scale benchmark (issue 10, "Scale, measured"): `npm run bench -- --scale`. Each part
// starts the built services it needs as processes of their own, on databases and folders it
// makes and removes afterwards:
//   1. taskdb on each engine (SQLite in a temp folder, PostgreSQL in a schema of its own) with
//      10³, 10⁴, 10⁵ and 10⁶ tasks seeded by SQL: median and p99 of claim, get, change state and
//      list by state (the first page, and a deep one by its cursor); 10⁶ ÷ 10³ of each median;
//   2. the queue's no-op throughput through taskdb's API (16 clients doing create → claim →
//      finish), creates alone, and create → claim with a claimer waiting;
//   3. claims after a mass release (hundreds of tasks into backoff at once) with 10⁵ tasks waiting
//      out their backoff, against the same without them;
//   4. storage PUT/GET of a 520 KB object with 10² and 10⁵ objects stored, folder and S3 (an
//      s3rver started here);
//   5. the 512×512 pipeline through the cluster (scripts/cluster.js), where the build has it.
// An engine the build lacks (taskdb without DATABASE_URL, storage without S3_BUCKET) is skipped
// with the reason, as is a part that fails (the others still run; the exit code is then 1).
// Prints a table per part (progress goes to stderr), writes the results as JSON and the tables as
// Markdown, for the README.
//
//   node bench/scale.js [options]     (needs a build; `npm run bench -- --scale` builds first)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadAverage, describeMachine, describeSource, logTails } = require('./run-info');

const ROOT = path.resolve(__dirname, '..');
const PARTS = ['taskdb', 'queue', 'release', 'storage', 'cluster'];
const ENGINES = ['sqlite', 'postgres'];
const STORES = ['folder', 's3'];

const USAGE = `usage: node bench/scale.js [options]    (or: npm run bench -- --scale [options])
  --quick            small tables and short runs, under a minute (CI: keeps the benchmark working)
  --only PARTS       some of ${PARTS.join(',')} (default: all)
  --backends LIST    some of ${[...ENGINES, ...STORES].join(',')} (default: every one the build has)
  --sizes LIST       taskdb table sizes, e.g. 1000,1000000 (default 1000,10000,100000,1000000)
  --out FILE         the JSON results (default bench/scale-results.json; the Markdown tables next to it, .md)
  --keep             keep the temporary folder with the services' logs
PostgreSQL: kit's test database (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test), a schema per run.
`;

/** What one run does; --quick keeps only enough of each to produce every figure. */
const PLANS = {
  full: {
    sizes: [1e3, 1e4, 1e5, 1e6],
    opSamples: 200,
    opWarmup: 20,
    clients: 16,
    throughputSeconds: 10,
    throughputWarmupSeconds: 2,
    throughputReps: 3,
    latencySamples: 100,
    latencyWarmup: 10,
    release: { backlog: 1e5, released: 500, ready: 1_000 },
    storageFillers: [1e2, 1e5],
    storage: { samples: 100, warmup: 10 },
    cluster: { images: 100, warmup: 8, clients: 8 },
  },
  quick: {
    sizes: [1e3, 1e4],
    opSamples: 30,
    opWarmup: 5,
    clients: 16,
    throughputSeconds: 2,
    throughputWarmupSeconds: 0.5,
    throughputReps: 1,
    latencySamples: 20,
    latencyWarmup: 3,
    release: { backlog: 1e4, released: 100, ready: 100 },
    storageFillers: [1e2, 2e3],
    storage: { samples: 10, warmup: 2 },
    cluster: { images: 10, warmup: 2, clients: 4 },
  },
};

class UsageError extends Error {}

function parseArgs(argv) {
  const args = {
    quick: false,
    only: PARTS,
    backends: undefined,
    sizes: undefined,
    out: path.join(__dirname, 'scale-results.json'),
    keep: false,
  };
  const list = (flag, value, allowed) => {
    const items = value.split(',').filter(Boolean);
    const unknown = items.filter((item) => !allowed.includes(item));
    if (items.length === 0 || unknown.length > 0) throw new UsageError(`${flag} takes some of ${allowed.join(',')}, got "${value}"`);
    return items;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--quick') args.quick = true;
    else if (arg === '--only') args.only = list(arg, value(), PARTS);
    else if (arg === '--backends') args.backends = list(arg, value(), [...ENGINES, ...STORES]);
    else if (arg === '--sizes') {
      const raw = value();
      args.sizes = raw
        .split(',')
        .map(Number)
        .sort((a, b) => a - b);
      if (args.sizes.some((n) => !Number.isInteger(n) || n < 1_000)) {
        throw new UsageError(`--sizes takes whole numbers of at least 1000, got "${raw}"`);
      }
    } else if (arg === '--out') args.out = path.resolve(value());
    else if (arg === '--keep') args.keep = true;
    else if (arg === '--scale') continue;
    else if (arg === '--help' || arg === '-h') args.help = true;
    else throw new UsageError(`unknown option ${arg}`);
  }
  return args;
}

/** The benchmark runs the built services: say how to build if missing. */
function checkBuilt() {
  const needed = [
    'apps/taskdb/dist/main.js',
    'apps/storage/dist/main.js',
    'packages/kit/dist/testing/index.js',
    'packages/contracts/dist/index.js',
  ];
  const missing = needed.filter((file) => !fs.existsSync(path.join(ROOT, file)));
  if (missing.length > 0) {
    throw new UsageError(
      `the build is missing (${missing.join(', ')}): run \`npm run build\` first, or \`npm run bench -- --scale\`, which builds`,
    );
  }
}

/** Whether a built service's config schema knows a variable: how the benchmark tells which backends the build has. */
function configKnows(app, schemaName, variable) {
  const schema = require(path.join(ROOT, 'apps', app, 'dist', 'config.js'))[schemaName];
  return variable in schema.shape;
}

/** Each backend: available, or why not. */
async function findBackends(args) {
  const { postgresReachable } = require('./scale-seed');
  const wanted = (name) => !args.backends || args.backends.includes(name);
  const backends = {
    sqlite: { available: true },
    postgres: configKnows('taskdb', 'TaskdbConfigSchema', 'DATABASE_URL')
      ? await postgresReachable().then((r) => (r.ok ? { available: true } : { available: false, reason: r.reason }))
      : { available: false, reason: 'the built taskdb has no DATABASE_URL yet' },
    folder: { available: true },
    s3: configKnows('storage', 'StorageConfigSchema', 'S3_BUCKET')
      ? { available: true }
      : { available: false, reason: 'the built storage has no S3_BUCKET yet' },
  };
  for (const [name, backend] of Object.entries(backends)) {
    if (backend.available && !wanted(name)) Object.assign(backend, { available: false, reason: 'left out by --backends' });
  }
  return backends;
}

const startedAt = Date.now();
const log = (message) => process.stderr.write(`[scale ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);

async function run(argv) {
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  checkBuilt();
  // Loaded only now: they need the build.
  const { sqliteDatabase, postgresDatabase, TASK_COLUMNS } = require('./scale-seed');
  const { operationsAtSize, queueThroughput, claimsAfterMassRelease, POLL_PAUSE_MS } = require('./scale-taskdb');
  const { storageWithObjects, OBJECT_BYTES } = require('./scale-storage');
  const { clusterLauncher, clusterPipeline } = require('./scale-cluster');
  const { undoPending } = require('./scale-services');
  const { closeConnections } = require('./pixelmill-client');
  const { scaleReport, sizeLabel, ms } = require('./scale-report');

  const plan = { ...PLANS[args.quick ? 'quick' : 'full'], ...(args.sizes ? { sizes: args.sizes } : {}) };
  const machine = describeMachine();
  const source = describeSource();
  const backends = await findBackends(args);
  const engines = ENGINES.filter((name) => backends[name].available);
  const stores = STORES.filter((name) => backends[name].available);
  log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')}`,
  );
  for (const [name, backend] of Object.entries(backends)) if (!backend.available) log(`${name}: skipped, ${backend.reason}`);

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-scale-'));
  const logDir = path.join(workDir, 'logs');
  fs.mkdirSync(logDir);
  const context = { workDir, logDir, log };
  const engineOf = {
    sqlite: { name: 'sqlite', create: (name) => sqliteDatabase(workDir, name) },
    postgres: { name: 'postgres', create: () => postgresDatabase() },
  };

  let stopping;
  const cleanup = () =>
    (stopping ??= (async () => {
      closeConnections();
      await undoPending();
      if (args.keep) log(`kept ${workDir}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    })());
  const onSignal = (signal) => {
    log(`${signal}: stopping`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results = { taskdb: {}, queue: {}, release: {}, storage: {}, cluster: undefined };
  const failures = [];
  /** Runs one measurement; a failure is reported and the run goes on with the next. */
  const attempt = async (what, measure) => {
    try {
      return await measure();
    } catch (err) {
      failures.push({ what, error: err.message });
      log(`${what} FAILED: ${err.stack ?? err}`);
      const tails = logTails(logDir);
      if (tails) process.stderr.write(`${tails}\n`);
      return undefined;
    }
  };
  const parts = new Set(args.only);

  try {
    if (parts.has('taskdb')) {
      for (const engine of engines) {
        results.taskdb[engine] = {};
        for (const total of plan.sizes) {
          log(`taskdb on ${engine}, ${total.toLocaleString('en-US')} tasks: seeding and measuring`);
          const figure = await attempt(`taskdb on ${engine} with ${total} tasks`, () =>
            operationsAtSize(engineOf[engine], total, plan, context),
          );
          if (!figure) continue;
          results.taskdb[engine][total] = figure;
          log(
            `taskdb on ${engine}, ${sizeLabel(total)}: seeded in ${figure.seedSeconds.toFixed(1)} s; ${Object.entries(figure.ops)
              .map(([op, f]) => `${op} ${ms(f.medianMs)} ms`)
              .join(', ')} (medians)`,
          );
        }
      }
    }
    if (parts.has('queue')) {
      for (const engine of engines) {
        log(`queue throughput on ${engine}`);
        const figure = await attempt(`queue throughput on ${engine}`, () => queueThroughput(engineOf[engine], plan, context));
        if (figure) results.queue[engine] = figure;
      }
    }
    if (parts.has('release')) {
      for (const engine of engines) {
        results.release[engine] = {};
        for (const [label, backlog] of [
          ['baseline', 0],
          ['backlog', plan.release.backlog],
        ]) {
          log(`mass release on ${engine}, ${backlog.toLocaleString('en-US')} tasks in backoff`);
          const figure = await attempt(`mass release on ${engine} with ${backlog} in backoff`, () =>
            claimsAfterMassRelease(engineOf[engine], backlog, plan, context),
          );
          if (figure) results.release[engine][label] = figure;
        }
      }
    }
    if (parts.has('storage')) {
      for (const store of stores) {
        results.storage[store] = {};
        for (const filler of plan.storageFillers) {
          log(`storage on ${store}, ${filler.toLocaleString('en-US')} objects stored`);
          const figure = await attempt(`storage on ${store} with ${filler} objects`, () =>
            storageWithObjects(store, filler, plan, context),
          );
          if (figure) results.storage[store][filler] = figure;
        }
      }
    }
    if (parts.has('cluster')) {
      const launcher = clusterLauncher();
      if (!launcher.start) {
        log(`cluster: skipped, ${launcher.reason}`);
        results.cluster = { skipped: launcher.reason };
      } else if (!backends.postgres.available) {
        results.cluster = { skipped: `the cluster runs on PostgreSQL: ${backends.postgres.reason}` };
      } else {
        log('cluster: starting');
        const figure = await attempt('cluster pipeline', () => clusterPipeline(launcher.start, plan, context));
        results.cluster = figure ?? { skipped: 'the measurement failed (see its log above)' };
      }
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const { sections, targets } = scaleReport(results, {
    plan,
    parts,
    engines,
    stores,
    pollPauseMs: POLL_PAUSE_MS,
    objectBytes: OBJECT_BYTES,
  });
  const skipped = Object.entries(backends)
    .filter(([, b]) => !b.available)
    .map(([name, b]) => `${name} (${b.reason})`);
  const header = [
    `pixelmill scale benchmark, ${new Date(startedAt).toISOString()}${args.quick ? ' (--quick: NOT the figures of record)' : ''}`,
    `machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.os}; load average at start ${machine.loadAverageAtStart.join(' ')}, at end ${loadAverage().join(' ')}`,
    source
      ? `source: ${source.commit.slice(0, 12)}${source.modified.length ? `, ${source.modified.length} modified file(s) in the work tree` : ', clean work tree'}`
      : undefined,
    skipped.length ? `skipped: ${skipped.join('; ')}` : undefined,
    failures.length ? `FAILED: ${failures.map((f) => f.what).join('; ')}` : undefined,
  ].filter(Boolean);
  const text = `${header.join('\n')}\n\n${sections.map((section) => `${section.title}\n\n${section.table}\n`).join('\n')}`;
  process.stdout.write(`\n${text}`);

  const output = {
    benchmark: 'pixelmill-scale',
    version: 1,
    startedAt: new Date(startedAt).toISOString(),
    durationSeconds: Number(((Date.now() - startedAt) / 1000).toFixed(1)),
    quick: args.quick,
    plan,
    machine: { ...machine, loadAverageAtEnd: loadAverage() },
    source,
    backends,
    seededTaskColumns: TASK_COLUMNS,
    ...results,
    targets,
    failures,
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(output, null, 2)}\n`);
  const markdown = args.out.replace(/\.json$/, '') + '.md';
  fs.writeFileSync(
    markdown,
    `${[header.join('  \n'), ...sections.map((section) => `**${section.title}**\n\n${section.table}`)].join('\n\n')}\n`,
  );
  process.stdout.write(
    `\n${targets.filter((t) => t.met).length} of ${targets.length} targets met${failures.length ? `; ${failures.length} measurement(s) FAILED` : ''}; results in ${path.relative(process.cwd(), args.out) || args.out}, tables in ${path.relative(process.cwd(), markdown) || markdown}\n`,
  );
  return failures.length > 0 ? 1 : 0;
}

/** Runs the benchmark with these arguments and exits with its code. */
function runFromCommandLine(argv) {
  run(argv).then(
    (code) => process.exit(code),
    (err) => {
      if (err instanceof UsageError) {
        process.stderr.write(`bench --scale: ${err.message}\n\n${USAGE}`);
        process.exit(2);
      }
      process.stderr.write(`bench --scale failed: ${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) runFromCommandLine(process.argv.slice(2));

module.exports = { runFromCommandLine };
