#!/usr/bin/env node
// What one inter-service request costs each end, in CPU: a service app of kit's (createServiceApp,
// a contract mounted with mountContract, a bearer token checked) in a child process, called by
// kit's ContractClient from this process. Each side measures its own process.cpuUsage (user +
// system), so neither counts the other's work.
//
//   node bench/request-cost.js [--calls N] [--reps N] [--kit DIR] [--only getJson,...] [--json]
//   node bench/request-cost.js --ab DIR_A,DIR_B[,…] [--reps N]   (builds of kit side by side, taking turns)
//
// DIR is a built kit (its dist folder); the default is the build of this checkout (`npm run build`
// first). Keep a copy taken before a change under node_modules/.cache (e.g.
// `cp -r packages/kit/dist node_modules/.cache/kit-before`): there it still finds the workspace's
// packages, and neither git nor the linters see it.
'use strict';
const { fork } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const TOKEN = 'request-cost-token';
const BLOB_BYTES = 512 * 1024;
const CONCURRENCY = 8;

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const at = argv.indexOf(name);
  return at < 0 ? fallback : argv[at + 1];
};
const kitDir = path.resolve(option('--kit', path.join(__dirname, '../packages/kit/dist')));

/** The routes: small JSON each way, and half a megabyte each way (an image's size). */
function benchContract() {
  const { defineRoute, BINARY, ErrorBodySchema } = require('@pixelmill/contracts');
  const { z } = require('zod');
  const ItemSchema = z.object({
    id: z.string(),
    name: z.string(),
    size: z.number().int(),
    tags: z.array(z.string()),
    updatedAt: z.string(),
  });
  const params = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
  return {
    getItem: defineRoute({
      method: 'GET',
      path: '/items/:id',
      auth: 'internal',
      summary: 'a small JSON answer',
      params,
      responses: { 200: ItemSchema, 404: ErrorBodySchema },
    }),
    setItem: defineRoute({
      method: 'POST',
      path: '/items/:id',
      auth: 'internal',
      idempotent: true,
      summary: 'a small JSON body and answer',
      params,
      body: z.object({ name: z.string(), size: z.number().int(), tags: z.array(z.string()) }),
      responses: { 200: ItemSchema, 400: ErrorBodySchema },
    }),
    putBlob: defineRoute({
      method: 'PUT',
      path: '/blobs/:id',
      auth: 'internal',
      summary: 'a binary body, a small JSON answer',
      params,
      body: BINARY,
      responses: { 201: z.object({ id: z.string(), size: z.number().int() }), 400: ErrorBodySchema },
    }),
    getBlob: defineRoute({
      method: 'GET',
      path: '/blobs/:id',
      auth: 'internal',
      summary: 'a binary answer',
      params,
      responses: { 200: BINARY, 404: ErrorBodySchema },
    }),
  };
}

/** The child: the service app, answering its CPU time over IPC when asked. */
async function serve() {
  const { createServiceApp, createLogger, listen, mountContract } = require(kitDir);
  const contract = benchContract();
  const blob = Buffer.alloc(BLOB_BYTES, 7);
  const item = (id, body = { name: 'an item', size: 42, tags: ['a', 'b'] }) => ({ id, ...body, updatedAt: new Date(0).toISOString() });
  const logger = createLogger('bench', 'warn');
  const app = createServiceApp({
    service: 'bench',
    logger,
    routes: (router) =>
      mountContract(
        router,
        contract,
        {
          getItem: ({ params }) => ({ status: 200, body: item(params.id) }),
          setItem: ({ params, body }) => ({ status: 200, body: item(params.id, body) }),
          putBlob: ({ params, body }) => ({ status: 201, body: { id: params.id, size: body.length } }),
          getBlob: () => ({ status: 200, body: blob, headers: { 'content-type': 'application/octet-stream' } }),
        },
        { tokens: { internal: TOKEN } },
      ),
  });
  const listening = await listen(app, 0);
  process.on('message', (message) => {
    if (message === 'cpu') process.send({ cpu: process.cpuUsage() });
    if (message === 'stop') void listening.close().then(() => process.exit(0));
  });
  process.send({ url: listening.url });
}

const cpuMicros = (usage) => usage.user + usage.system;

/** Runs `call(i)` `calls` times, `concurrency` at a time. */
async function inParallel(calls, concurrency, call) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, calls) }, async () => {
      for (let i = next++; i < calls; i = next++) await call(i);
    }),
  );
}

/**
 * One side of the comparison: a server of the kit in `dir` (a child process) and a client of the
 * same kit here; `kinds` are the calls to measure, `serverCpu()` the server's CPU µs so far.
 */
async function setUp(dir, calls) {
  const server = fork(__filename, ['--serve', '--kit', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise((resolve) => server.once('message', resolve));
  const { url } = await next();
  const serverCpu = async () => {
    server.send('cpu');
    return cpuMicros((await next()).cpu);
  };
  const stop = async () => {
    server.send('stop');
    await new Promise((resolve) => server.once('exit', resolve));
  };
  const { ContractClient } = require(dir);
  const contract = benchContract();
  const client = new ContractClient({ service: 'bench', baseUrl: url, token: TOKEN });
  const blob = Buffer.alloc(BLOB_BYTES, 9);
  const expect = (result, status) => {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status}`);
    return result;
  };
  const kinds = {
    getJson: { n: calls, c: 1, call: async (i) => expect(await client.call(contract.getItem, { params: { id: `item${i}` } }), 200) },
    getJsonConcurrent: {
      n: calls,
      c: CONCURRENCY,
      call: async (i) => expect(await client.call(contract.getItem, { params: { id: `item${i}` } }), 200),
    },
    postJson: {
      n: calls,
      c: 1,
      call: async (i) =>
        expect(await client.call(contract.setItem, { params: { id: `item${i}` }, body: { name: `item ${i}`, size: i, tags: ['x'] } }), 200),
    },
    upload512K: {
      n: Math.ceil(calls / 10),
      c: 1,
      call: async (i) =>
        expect(await client.call(contract.putBlob, { params: { id: `blob${i}` }, body: blob, contentType: 'image/png' }), 201),
    },
    download512K: {
      n: Math.ceil(calls / 10),
      c: 1,
      call: async (i) => {
        const result = expect(await client.call(contract.getBlob, { params: { id: `blob${i}` } }), 200);
        if (result.body.length !== BLOB_BYTES) throw new Error(`download: ${result.body.length} bytes`);
      },
    },
  };
  // The floor of the client side: the same calls on bare node:http (a keep-alive agent, the body
  // read whole, JSON parsed, no checks). The server's work is the same as for the calls above.
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
  const { hostname, port } = new URL(url);
  const bare = (path) =>
    new Promise((resolve, reject) => {
      const req = http.request({ agent, hostname, port, path, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  kinds.bareGetJson = { n: calls, c: 1, call: async (i) => JSON.parse(expect(await bare(`/items/item${i}`), 200).body) };
  kinds.bareDownload512K = { n: Math.ceil(calls / 10), c: 1, call: async (i) => expect(await bare(`/blobs/blob${i}`), 200) };
  return { kinds, serverCpu, stop };
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

/**
 * Each figure as CPU µs per call of the client and of the server, for each kit in `dirs`: the
 * kits take turns, call kind by call kind, so that the machine's drift falls on all alike.
 */
async function measure(dirs) {
  const calls = Number(option('--calls', 2000));
  const reps = Number(option('--reps', 3));
  const only = option('--only', undefined)?.split(',');
  const sides = [];
  for (const dir of dirs) sides.push(await setUp(dir, calls));
  const figures = dirs.map(() => ({}));
  // Repetition 0 warms up (compiles and tunes the code) and is not counted.
  for (let rep = 0; rep <= reps; rep++) {
    for (const name of Object.keys(sides[0].kinds)) {
      if (only !== undefined && !only.includes(name)) continue;
      for (const [which, side] of sides.entries()) {
        const kind = side.kinds[name];
        const serverBefore = await side.serverCpu();
        const clientBefore = process.cpuUsage();
        await inParallel(kind.n, kind.c, kind.call);
        const clientUs = cpuMicros(process.cpuUsage(clientBefore)) / kind.n;
        const serverUs = ((await side.serverCpu()) - serverBefore) / kind.n;
        if (rep > 0)
          ((figures[which][name] ??= { client: [], server: [] }).client.push(clientUs), figures[which][name].server.push(serverUs));
      }
    }
    if (reps > 1) process.stderr.write(`rep ${rep}/${reps} done\n`);
  }
  for (const side of sides) await side.stop();
  return figures;
}

const table = (rows) => rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
const span = (list) => `${Math.min(...list).toFixed(0)}–${Math.max(...list).toFixed(0)}`;

async function main() {
  if (flag('--serve')) return serve();
  const dirs = flag('--ab')
    ? option('--ab', '')
        .split(',')
        .map((dir) => path.resolve(dir))
    : [kitDir];
  const figures = await measure(dirs);
  if (flag('--json')) {
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    return;
  }
  const letters = dirs.map((_dir, which) => String.fromCharCode(65 + which));
  const header = ['call', ...letters.map((l) => `client ${l} µs`), ...letters.map((l) => `server ${l} µs`)];
  const rows = [header, header.map(() => '---')];
  for (const name of Object.keys(figures[0])) {
    const cell = (list) => `${median(list).toFixed(0)} (${span(list)})`;
    rows.push([name, ...figures.map((f) => cell(f[name].client)), ...figures.map((f) => cell(f[name].server))]);
  }
  const legend = dirs.map((dir, which) => `${letters[which]} = ${dir}`).join('\n');
  process.stdout.write(`${legend}\nmedian (min–max) of ${option('--reps', 3)} repetitions\n${table(rows)}\n`);
}

main().catch((err) => {
  process.stderr.write(`request-cost failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
