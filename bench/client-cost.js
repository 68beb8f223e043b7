#!/usr/bin/env node
// What kit's ContractClient costs the process that calls: CPU time of this process
// (process.cpuUsage, user + system) per call against real kv and storage servers running as
// their own processes, so the servers' work is not counted. Small JSON calls one after another
// and concurrently, and a 1 MB binary body up and down.
//
//   node bench/client-cost.js [--reps N] [--calls N]    (needs a build: `npm run build`)
//
// bench/bench.js runs the same measurement in its full run.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CONCURRENCY = 16;
const BINARY_BYTES = 1_000_000;

/** What one repetition does: small calls of each kind, binary calls each way, and warm-up calls. */
const CLIENT_PLANS = {
  full: { calls: 2_000, binaryCalls: 100, warmup: 1_000, binaryWarmup: 20 },
  tiny: { calls: 100, binaryCalls: 5, warmup: 20, binaryWarmup: 2 },
};

/** CPU microseconds of this process and wall milliseconds per call of `run(calls)`. */
async function perCall(calls, run) {
  const wallBefore = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  await run(calls);
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = Number(process.hrtime.bigint() - wallBefore) / 1e6;
  return { cpuUsPerCall: (cpu.user + cpu.system) / calls, wallMsPerCall: wallMs / calls };
}

/** Runs `call(i)` `calls` times, `concurrency` at a time. */
async function inParallel(calls, concurrency, call) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, calls) }, async () => {
      for (let i = next++; i < calls; i = next++) await call(i);
    }),
  );
}

const expect = (result, status, what) => {
  if (result.status !== status) throw new Error(`${what}: expected ${status}, got ${result.status}`);
  return result;
};

/**
 * One repetition of every figure, as CPU µs and wall ms per call:
 * `getSequential`, `getConcurrent`, `setSequential`, `upload1MB`, `download1MB`.
 * @param {{ kvUrl: string, storageUrl: string, token?: string, plan: typeof CLIENT_PLANS.full, image: Buffer, keyPrefix: string }} options
 */
async function measureClientCost({ kvUrl, storageUrl, token, plan, image, keyPrefix }) {
  const { ContractClient } = require('@pixelmill/kit');
  const { kvContract, storageContract } = require('@pixelmill/contracts');
  const kv = new ContractClient({ service: 'kv', baseUrl: kvUrl, token });
  const storage = new ContractClient({ service: 'storage', baseUrl: storageUrl, token });
  const key = `${keyPrefix}/value`;
  const get = async () => expect(await kv.call(kvContract.get, { params: { key } }), 200, 'kv get');
  const set = async (i) => expect(await kv.call(kvContract.set, { params: { key }, body: { value: `value ${i}` } }), 200, 'kv set');
  const objectKey = (i) => `${keyPrefix.replace(/[^A-Za-z0-9_-]/g, '_')}_${i}`;
  const warmKey = (i) => `${objectKey('warm')}_${i}`;
  const upload = async (i) =>
    expect(
      await storage.call(storageContract.put, { params: { state: 'finished', key: objectKey(i) }, body: image, contentType: 'image/png' }),
      201,
      'storage put',
    );
  const download = async (i) => {
    const result = expect(
      await storage.call(storageContract.get, { params: { state: 'finished', key: objectKey(i % plan.binaryCalls) } }),
      200,
      'storage get',
    );
    if (result.body.length !== image.length) throw new Error(`storage get: ${result.body.length} bytes, expected ${image.length}`);
  };

  // The first thousand calls or so still compile and tune code: they are not counted.
  await set(0);
  await inParallel(plan.warmup, 1, get);
  await inParallel(plan.warmup, CONCURRENCY, get);
  await inParallel(plan.warmup, 1, set);
  const warmUpload = (i) =>
    storage.call(storageContract.put, { params: { state: 'finished', key: warmKey(i) }, body: image, contentType: 'image/png' });
  await inParallel(plan.binaryWarmup, 1, warmUpload);
  await inParallel(plan.binaryWarmup, 1, (i) => storage.call(storageContract.get, { params: { state: 'finished', key: warmKey(i) } }));
  const figures = {};
  figures.getSequential = await perCall(plan.calls, (n) => inParallel(n, 1, get));
  figures.getConcurrent = await perCall(plan.calls, (n) => inParallel(n, CONCURRENCY, get));
  figures.setSequential = await perCall(plan.calls, (n) => inParallel(n, 1, set));
  figures.upload1MB = await perCall(plan.binaryCalls, (n) => inParallel(n, 1, upload));
  figures.download1MB = await perCall(plan.binaryCalls, (n) => inParallel(n, 1, download));
  const remove = (key) => storage.call(storageContract.delete, { params: { state: 'finished', key } });
  await inParallel(plan.binaryCalls, 4, (i) => remove(objectKey(i)));
  await inParallel(plan.binaryWarmup, 4, (i) => remove(warmKey(i)));
  return figures;
}

/** The table rows of these figures, for bench/report.js. */
function clientCostRows(prefix) {
  return [
    { id: `${prefix}.getSequential.cpuUsPerCall`, label: 'client CPU per call: small JSON GET, one at a time', unit: 'µs', digits: 0 },
    {
      id: `${prefix}.getConcurrent.cpuUsPerCall`,
      label: `client CPU per call: small JSON GET, ${CONCURRENCY} at a time`,
      unit: 'µs',
      digits: 0,
    },
    { id: `${prefix}.setSequential.cpuUsPerCall`, label: 'client CPU per call: small JSON POST, one at a time', unit: 'µs', digits: 0 },
    { id: `${prefix}.upload1MB.cpuUsPerCall`, label: 'client CPU per call: 1 MB binary upload', unit: 'µs', digits: 0 },
    { id: `${prefix}.download1MB.cpuUsPerCall`, label: 'client CPU per call: 1 MB binary download', unit: 'µs', digits: 0 },
    {
      id: `${prefix}.getSequential.wallMsPerCall`,
      label: 'client wall time per call: small JSON GET, one at a time',
      unit: 'ms',
      digits: 3,
    },
  ];
}

/** Records one repetition's figures under `prefix` with `record(id, value)`. */
function recordClientCost(figures, prefix, record) {
  for (const [name, figure] of Object.entries(figures)) {
    record(`${prefix}.${name}.cpuUsPerCall`, figure.cpuUsPerCall);
    record(`${prefix}.${name}.wallMsPerCall`, figure.wallMsPerCall);
  }
}

async function main() {
  const argv = process.argv.slice(2);
  const option = (flag, fallback) => {
    const at = argv.indexOf(flag);
    if (at < 0) return fallback;
    const n = Number(argv[at + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  const reps = option('--reps', 3);
  const plan = { ...CLIENT_PLANS.full, calls: option('--calls', CLIENT_PLANS.full.calls) };
  const { startStack } = require('../scripts/stack');
  const { noisePng } = require('./test-images');
  const { summarize } = require('./stats');
  const { tableCells, markdownTable } = require('./report');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-client-cost-'));
  const values = {};
  const record = (id, value) => (values[id] ??= []).push(value);
  let stack;
  try {
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      workers: 0,
      env: { LOG_LEVEL: 'warn' },
    });
    const image = noisePng(BINARY_BYTES, 3).bytes;
    // Repetition 0 warms up and is not counted: the first one comes out up to twice as dear.
    for (let r = 0; r <= reps; r++) {
      const figures = await measureClientCost({
        kvUrl: stack.urls.kv,
        storageUrl: stack.urls.storage,
        token: stack.tokens.internal,
        plan,
        image,
        keyPrefix: `bench-${r}`,
      });
      if (r > 0) recordClientCost(figures, 'client', record);
      process.stderr.write(
        `rep ${r}${r === 0 ? ' (warm-up)' : ''}: ${Object.entries(figures)
          .map(([name, f]) => `${name} ${f.cpuUsPerCall.toFixed(0)} µs`)
          .join(', ')}\n`,
      );
    }
  } finally {
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const figures = Object.fromEntries(Object.entries(values).map(([id, list]) => [id, summarize(list)]));
  const rows = clientCostRows('client');
  process.stdout.write(
    `${markdownTable(
      ['measure', 'median', 'min–max'],
      tableCells(rows, figures).map((cells) => cells.slice(0, 3)),
    )}\n`,
  );
  process.stdout.write(
    `${JSON.stringify(Object.fromEntries(rows.map((row) => [row.id, figures[row.id].values.map((v) => Number(v.toFixed(3)))])))}\n`,
  );
}

module.exports = { CLIENT_PLANS, BINARY_BYTES, inParallel, measureClientCost, clientCostRows, recordClientCost };

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`client-cost failed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
