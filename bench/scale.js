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
const { loadAverage, describeMachine, describeSource } = require('./machine');

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
      args.sizes = raw.split(',').map(Number);
      if (args.sizes.some((n) => !Number.isInteger(n) || n < 1_000))
        throw new UsageError(`--sizes takes whole numbers of at least 1000, got "${raw}"`);
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

/** 10³ for 1000, else the number with separators. */
function sizeLabel(n) {
  const exponent = Math.log10(n);
  if (!Number.isInteger(exponent)) return n.toLocaleString('en-US');
  return `10${[...String(exponent)].map((d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[Number(d)]).join('')}`;
}

const ms = (v) => (v === undefined || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const medianP99 = (figure) => (figure ? `${ms(figure.medianMs)} / ${ms(figure.p99Ms)} ms` : '–');

/** The last lines of each log, to explain a failure before the folder is removed. */
function logTails(logDir, lines = 10) {
  if (!fs.existsSync(logDir)) return '';
  return fs
    .readdirSync(logDir)
    .map((file) => {
      const text = fs.readFileSync(path.join(logDir, file), 'utf8').trimEnd();
      return text ? `--- ${file} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}` : '';
    })
    .filter(Boolean)
    .join('\n');
}

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
  const { median, summarize } = require('./stats');
  const { markdownTable, isMet } = require('./report');

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
        results.cluster = (await attempt('cluster pipeline', () => clusterPipeline(launcher.start, plan, context))) ?? {
          skipped: 'failed',
        };
      }
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // Targets of the issue, each on the figures it is about.
  const targets = [];
  const target = (id, label, cmp, value, measured) => {
    if (measured === undefined || !Number.isFinite(measured)) return undefined;
    const entry = { id, label, cmp, value, measured, met: isMet({ cmp, value }, measured) };
    targets.push(entry);
    return entry;
  };
  const metCell = (entry) => (entry ? (entry.met ? 'yes' : 'NO') : '');
  const [smallest, largest] = [plan.sizes[0], plan.sizes[plan.sizes.length - 1]];
  const sections = [];

  // 1. taskdb as the table grows.
  if (parts.has('taskdb')) {
    const OPS = [
      ['claim', 'claim'],
      ['get', 'get'],
      ['changeState', 'change state'],
      ['listFirst', 'list by state, first page'],
      ['listDeep', 'list by state, deep page (cursor)'],
    ];
    const ratioLabel = `${sizeLabel(largest)} ÷ ${sizeLabel(smallest)}`;
    const cells = [];
    for (const engine of engines) {
      const bySize = results.taskdb[engine] ?? {};
      for (const [op, label] of OPS) {
        const ratio =
          bySize[largest] && bySize[smallest] ? bySize[largest].ops[op].medianMs / bySize[smallest].ops[op].medianMs : undefined;
        const entry =
          plan.sizes.length > 1
            ? target(`taskdb.${engine}.${op}.ratio`, `taskdb ${engine} ${label}: median ${ratioLabel}`, '<=', 2, ratio)
            : undefined;
        cells.push([
          label,
          engine,
          ...plan.sizes.map((n) => medianP99(bySize[n]?.ops[op])),
          ratio === undefined ? '–' : ratio.toFixed(2),
          entry ? '≤ 2' : '',
          metCell(entry),
        ]);
      }
      cells.push([
        '(seeding by SQL)',
        engine,
        ...plan.sizes.map((n) => (bySize[n] ? `${bySize[n].seedSeconds.toFixed(1)} s` : '–')),
        '',
        '',
        '',
      ]);
    }
    sections.push({
      title: `taskdb as the table grows: median / p99 of one call at a time (${plan.opSamples} each), through its HTTP API`,
      table: markdownTable(['call', 'engine', ...plan.sizes.map(sizeLabel), ratioLabel, 'target', 'met?'], cells),
    });
  }

  // 2. The queue's throughput and wake-up.
  if (parts.has('queue')) {
    const q = results.queue;
    const perSecond = (engine, kind) => (q[engine] ? summarize(q[engine][kind].map((r) => r.perSecond)) : undefined);
    const rate = (figure) =>
      figure
        ? `${figure.median.toFixed(0)}/s${figure.min === figure.max ? '' : ` (${figure.min.toFixed(0)}–${figure.max.toFixed(0)})`}`
        : '–';
    const perTurn = (engine, kind, field, digits, unit) =>
      q[engine] ? `${median(q[engine][kind].map((r) => r[field])).toFixed(digits)}${unit}` : '–';
    const cycles = Object.fromEntries(engines.map((engine) => [engine, perSecond(engine, 'cycles')]));
    const pgTarget = target(
      'queue.postgres.perSecond',
      'create → claim → finish on PostgreSQL, 16 clients',
      '>=',
      800,
      cycles.postgres?.median,
    );
    const pgOverSqlite = cycles.postgres && cycles.sqlite ? cycles.postgres.median / cycles.sqlite.median : undefined;
    const pgOverSqliteTarget = target('queue.postgresOverSqlite', 'create → claim → finish, PostgreSQL ÷ SQLite', '>=', 1, pgOverSqlite);
    // The claimer of record waits on the events long poll; where the build has none, the polling one stands in.
    const wakeTargets = Object.fromEntries(
      engines.map((engine) => {
        const byMode = q[engine]?.createToClaim;
        const mode = byMode?.events ? 'events' : 'poll';
        return [
          engine,
          {
            mode,
            entry: target(
              `queue.${engine}.createToClaim.${mode}`,
              `create → claim median on ${engine} (${mode})`,
              '<=',
              10,
              byMode?.[mode]?.medianMs,
            ),
          },
        ];
      }),
    );
    const row = (label, cellOf, targetCell = '', met = '') => [label, ...engines.map(cellOf), targetCell, met];
    const wakeRow = (mode, label) =>
      row(
        label,
        (engine) => {
          const byMode = q[engine]?.createToClaim;
          if (!byMode) return '–';
          return byMode[mode] === null ? 'no GET /events in this build' : medianP99(byMode[mode]);
        },
        engines.some((engine) => wakeTargets[engine].mode === mode) ? '≤ 10 ms (median)' : '',
        engines
          .filter((engine) => wakeTargets[engine].mode === mode)
          .map((engine) => `${engine}: ${metCell(wakeTargets[engine].entry) || '–'}`)
          .join(', '),
      );
    const cells = [
      row(`create → claim → finish, ${plan.clients} clients`, (engine) => rate(cycles[engine]), 'postgres ≥ 800/s', metCell(pgTarget)),
      row('  taskdb CPU per task', (engine) => perTurn(engine, 'cycles', 'taskdbCpuMsPerTurn', 2, ' ms')),
      row('  machine busy meanwhile (all processes)', (engine) => perTurn(engine, 'cycles', 'machineBusyPercent', 0, ' %')),
      row(
        '  PostgreSQL ÷ SQLite',
        (engine) => (engine === 'postgres' && pgOverSqlite !== undefined ? pgOverSqlite.toFixed(2) : ''),
        '≥ 1',
        metCell(pgOverSqliteTarget),
      ),
      row(`creates alone, ${plan.clients} clients`, (engine) => rate(perSecond(engine, 'creates'))),
      wakeRow('events', 'create → claim, the claimer long-polling GET /events (median / p99)'),
      wakeRow('poll', `create → claim, the claimer polling POST /claims, ${POLL_PAUSE_MS} ms apart (median / p99)`),
    ];
    sections.push({
      title: `The queue through taskdb's API: ${plan.throughputReps} run(s) of ${plan.throughputSeconds} s, median (min–max); create → claim one task at a time (${plan.latencySamples})`,
      table: markdownTable(['measure', ...engines, 'target', 'met?'], cells),
    });
  }

  // 3. A mass release.
  if (parts.has('release')) {
    const r = results.release;
    const { backlog, released } = plan.release;
    const ratios = Object.fromEntries(
      engines.map((engine) => [
        engine,
        r[engine]?.baseline && r[engine]?.backlog ? r[engine].backlog.claim.medianMs / r[engine].baseline.claim.medianMs : undefined,
      ]),
    );
    const entries = Object.fromEntries(
      engines.map((engine) => [
        engine,
        target(
          `release.${engine}.ratio`,
          `claim after a mass release on ${engine}: ${sizeLabel(backlog)} in backoff ÷ none`,
          '<=',
          2,
          ratios[engine],
        ),
      ]),
    );
    const cells = [
      [
        `release ${released} held tasks at once (${plan.clients} clients), total`,
        ...engines.map((e) => (r[e]?.backlog ? `${ms(r[e].backlog.releaseMs)} ms` : '–')),
        '',
        '',
      ],
      ['claim, none in backoff (median / p99)', ...engines.map((e) => medianP99(r[e]?.baseline?.claim)), '', ''],
      [
        `claim, ${sizeLabel(backlog)} older tasks in backoff (median / p99)`,
        ...engines.map((e) => medianP99(r[e]?.backlog?.claim)),
        '',
        '',
      ],
      [
        '  ÷ none in backoff',
        ...engines.map((e) => (ratios[e] === undefined ? '–' : ratios[e].toFixed(2))),
        '≤ 2',
        engines.map((e) => `${e}: ${metCell(entries[e]) || '–'}`).join(', '),
      ],
    ];
    sections.push({
      title: `Claims after a mass release: ${released} tasks into backoff at once, ${plan.opSamples} claims of newer ready tasks`,
      table: markdownTable(['measure', ...engines, 'target', 'met?'], cells),
    });
  }

  // 4. storage with many objects.
  if (parts.has('storage')) {
    const s = results.storage;
    const cells = [];
    for (const store of stores) {
      for (const filler of plan.storageFillers) {
        const figure = s[store]?.[filler];
        cells.push([store, sizeLabel(filler), medianP99(figure?.put), medianP99(figure?.get)]);
      }
      const [few, many] = [s[store]?.[plan.storageFillers[0]], s[store]?.[plan.storageFillers[plan.storageFillers.length - 1]]];
      if (few && many) {
        cells.push([
          `${store}: ${sizeLabel(plan.storageFillers[plan.storageFillers.length - 1])} ÷ ${sizeLabel(plan.storageFillers[0])}`,
          '',
          (many.put.medianMs / few.put.medianMs).toFixed(2),
          (many.get.medianMs / few.get.medianMs).toFixed(2),
        ]);
      }
    }
    sections.push({
      title: `storage: PUT and GET of a ${(OBJECT_BYTES / 1000).toFixed(0)} KB PNG through its HTTP API, one at a time (${plan.storage.samples} each), median / p99`,
      table: markdownTable(['store', 'objects stored', 'PUT', 'GET'], cells),
    });
  }

  // 5. The cluster.
  if (parts.has('cluster')) {
    const c = results.cluster;
    const cell = c?.imagesPerSecond ? `${c.imagesPerSecond.toFixed(1)} img/s` : `skipped: ${c?.skipped ?? 'not run'}`;
    const label = c?.imagesPerSecond
      ? `512×512 pipeline through the cluster (${c.images} images, ${c.clients} clients over ${c.frontends} frontends)`
      : '512×512 pipeline through the cluster';
    sections.push({
      title: 'The cluster (scripts/cluster.js), for the record',
      table: markdownTable(['measure', 'value'], [[label, cell]]),
    });
  }

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
