// taskdb at scale, through its HTTP API: a taskdb process on a seeded database of either engine.
// The latency of each hot-path call as the table grows, the queue's no-op throughput, the wait
// from create to claim, and claims after a mass release.
'use strict';
const { randomUUID } = require('node:crypto');
const os = require('node:os');
const { request, sleep } = require('./pixelmill-client');
const { inParallel } = require('./client-cost');
const { ProcessMeter } = require('./process-meter');
const { seededTaskId, seededLeaseToken, realisticSpread } = require('./scale-seed');
const { startService, timed, latency } = require('./scale-services');

const LEASE_MS = 60_000;
/** Page size of the listings measured (the contract's default). */
const PAGE = 100;
/** How long the events long poll of a waiting claimer lasts: short, so that stopping it is quick. */
const EVENTS_WAIT_MS = 2_000;
/** A polling claimer's pause after an empty claim. */
const POLL_PAUSE_MS = 5;
/** Pause before each create of the create → claim measurement, so that the claimer is waiting again. */
const CREATE_GAP_MS = 20;
/** Retry backoff of the mass-release taskdb: the released tasks stay in backoff while claims are measured. */
const LONG_BACKOFF_ENV = { RETRY_BASE_MS: '300000', RETRY_MAX_MS: '600000' };

/** taskdb's API as the benchmark calls it: keep-alive HTTP, no checks beyond the status. */
class TaskdbApi {
  constructor(url) {
    this.url = url;
  }

  async call(method, route, body, expected) {
    const answer = await request(`${this.url}${route}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? Buffer.from(JSON.stringify(body)) : undefined,
    });
    if (!expected.includes(answer.status)) {
      throw new Error(`taskdb ${method} ${route}: ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
    }
    return { status: answer.status, body: answer.body.length > 0 ? JSON.parse(answer.body.toString('utf8')) : undefined };
  }

  create(id) {
    return this.call(
      'POST',
      '/tasks',
      { id, op: 'swap-red-blue', contentType: 'image/png', sourceBytes: 350_000, width: 512, height: 512 },
      [201],
    );
  }

  /** The claimed task with its lease token, or undefined when there is none to claim. */
  async claim() {
    const answer = await this.call('POST', '/claims', { leaseMs: LEASE_MS }, [200, 204]);
    return answer.status === 200 ? answer.body : undefined;
  }

  finish(claim) {
    return this.call('POST', `/tasks/${claim.id}/state`, { to: 'finished', leaseToken: claim.leaseToken, resultBytes: 340_000 }, [200]);
  }

  release(id, leaseToken) {
    return this.call('POST', `/tasks/${id}/state`, { to: 'not_started', leaseToken, error: 'released by the benchmark' }, [200]);
  }

  get(id) {
    return this.call('GET', `/tasks/${id}`, undefined, [200]);
  }

  async list(state, cursor) {
    return (await this.call('GET', `/tasks?state=${state}&limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`, undefined, [200])).body;
  }

  async events(after, waitMs = 0) {
    return (await this.call('GET', `/events?waitMs=${waitMs}${after ? `&after=${encodeURIComponent(after)}` : ''}`, undefined, [200])).body;
  }

  /** Whether this taskdb serves the events long poll (GET /events); older builds do not. */
  async hasEvents() {
    const answer = await request(`${this.url}/events?waitMs=0`);
    return answer.status === 200;
  }
}

/**
 * A taskdb on a database of its own, seeded with `segments`: taskdb starts once on the empty
 * database (its migrations make the tables), stops, the rows go in by SQL, and it starts again
 * on them. `measure(api, database, taskdb)` runs against the second; everything is removed after.
 */
async function withSeededTaskdb(backend, name, segments, { logDir, env = {} }, measure) {
  const database = await backend.create(name);
  try {
    await (await startService('taskdb', `taskdb-${name}-migrate`, database.env, logDir)).stop();
    const started = performance.now();
    const seeded = await database.seed(segments, Date.now());
    const seedSeconds = (performance.now() - started) / 1000;
    const taskdb = await startService('taskdb', `taskdb-${name}`, { ...database.env, ...env }, logDir);
    try {
      return {
        rows: seeded.rows,
        leasesSeeded: seeded.leases,
        seedSeconds,
        ...(await measure(new TaskdbApi(taskdb.url), database, taskdb)),
      };
    } finally {
      await taskdb.stop();
    }
  } finally {
    await database.drop();
  }
}

/**
 * One client, one call at a time, the five calls in turn so that each sees the same moments of a
 * shared machine: get (a random task of the whole table), claim, change state (the claimed task
 * to finished), list finished (the first page, and a page 90 % of the way down by its cursor).
 */
async function measureOperations(api, database, { total, samples, warmup }) {
  // The cursor is the sequence number of a page's last task: checked on the first page, then a
  // deep one is read from the database instead of walking thousands of pages to it.
  const first = await api.list('finished');
  const expected = String(await database.seqAt('finished', PAGE - 1));
  if (first.nextCursor !== expected) {
    throw new Error(
      `the list cursor is not the sequence number any more (${first.nextCursor}, expected ${expected}): update ${__filename}`,
    );
  }
  const finished = await database.count('finished');
  const deepCursor = String(await database.seqAt('finished', Math.floor(finished * 0.9) - PAGE));
  const times = { claim: [], get: [], changeState: [], listFirst: [], listDeep: [] };
  for (let k = 0; k < warmup + samples; k++) {
    const record = (op, [ms]) => k >= warmup && times[op].push(ms);
    record('get', await timed(() => api.get(seededTaskId(Math.floor(Math.random() * total)))));
    const claimed = await timed(() => api.claim());
    if (!claimed[1]) throw new Error(`nothing left to claim after ${k} claims`);
    record('claim', claimed);
    record('changeState', await timed(() => api.finish(claimed[1])));
    record('listFirst', await timed(() => api.list('finished')));
    const deep = await timed(() => api.list('finished', deepCursor));
    if (deep[1].ids.length !== PAGE) throw new Error(`the deep page has ${deep[1].ids.length} tasks, not ${PAGE}`);
    record('listDeep', deep);
  }
  return Object.fromEntries(Object.entries(times).map(([op, values]) => [op, latency(values)]));
}

/** Part 1: the hot-path calls on a table of `total` tasks spread as a live queue's are. */
function operationsAtSize(backend, total, plan, context) {
  return withSeededTaskdb(backend, `${backend.name}-${total}`, realisticSpread(total), context, async (api, database) => ({
    ops: await measureOperations(api, database, { total, samples: plan.opSamples, warmup: plan.opWarmup }),
  }));
}

/**
 * Completed turns per second of `clients` loops, each calling `turn` as fast as it can, counted
 * over `seconds` after `warmupSeconds`; with the CPU time taskdb spent per turn meanwhile and
 * how busy the whole machine was.
 */
async function turnsPerSecond({ clients, seconds, warmupSeconds }, turn, taskdbPid) {
  let running = true;
  let counting = false;
  let done = 0;
  let failure;
  const loops = Array.from({ length: clients }, async () => {
    try {
      while (running) {
        await turn();
        if (counting) done += 1;
      }
    } catch (err) {
      failure ??= err;
      running = false;
    }
  });
  await sleep(warmupSeconds * 1000);
  const meter = new ProcessMeter({ taskdb: taskdbPid });
  const cpuBefore = meter.cpuMs().taskdb;
  const machineBefore = meter.machineBusyMs();
  counting = true;
  const started = performance.now();
  await sleep(seconds * 1000);
  counting = false;
  const elapsed = (performance.now() - started) / 1000;
  const count = done;
  const taskdbCpuMs = meter.cpuMs().taskdb - cpuBefore;
  const machineBusyMs = meter.machineBusyMs() - machineBefore;
  running = false;
  await Promise.all(loops);
  if (failure) throw failure;
  return {
    perSecond: count / elapsed,
    taskdbCpuMsPerTurn: taskdbCpuMs / count,
    machineBusyPercent: (100 * machineBusyMs) / (elapsed * 1000 * os.availableParallelism()),
  };
}

/** A claim, asked again at once while the answer is "none" (another client took the task first). */
async function claimOne(api) {
  for (let tries = 0; tries < 1_000; tries++) {
    const claim = await api.claim();
    if (claim) return claim;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('1,000 claims in a row found nothing, with tasks created');
}

/**
 * Create → claim with a claimer waiting: `events` long-polls GET /events and claims on a
 * `created` event; `poll` claims, pausing POLL_PAUSE_MS after an empty answer. The time runs
 * from sending the create to the claimer holding that task. One task at a time.
 */
async function createToClaim(api, { samples, warmup }, mode) {
  const waiting = new Map();
  let running = true;
  const takeAll = async () => {
    for (;;) {
      const claim = await api.claim();
      if (!claim) return;
      waiting.get(claim.id)?.(performance.now());
      await api.finish(claim);
    }
  };
  const claimer = (async () => {
    if (mode === 'events') {
      let { cursor } = await api.events();
      while (running) {
        const answer = await api.events(cursor, EVENTS_WAIT_MS);
        cursor = answer.cursor;
        if (answer.reset || answer.events.some((event) => event.kind === 'created')) await takeAll();
      }
    } else {
      while (running) {
        await takeAll();
        await sleep(POLL_PAUSE_MS);
      }
    }
  })();
  const claimerEnded = claimer.then(() => {
    throw new Error('the claimer stopped');
  });
  const latencies = [];
  try {
    for (let k = 0; k < warmup + samples; k++) {
      await sleep(CREATE_GAP_MS);
      const id = randomUUID();
      let timer;
      const claimed = new Promise((resolve, reject) => {
        waiting.set(id, resolve);
        timer = setTimeout(() => reject(new Error(`task ${id} was not claimed within 10 s (${mode})`)), 10_000);
      });
      const started = performance.now();
      await api.create(id);
      const at = await Promise.race([claimed, claimerEnded]).finally(() => clearTimeout(timer));
      waiting.delete(id);
      if (k >= warmup) latencies.push(at - started);
    }
  } finally {
    running = false;
    await claimer.catch(() => undefined);
  }
  return latency(latencies);
}

/**
 * Part 2: the queue with nothing to do but queue. On an empty database: `clients` loops of
 * create → claim → finish, repeated; create → claim with a waiting claimer, by the events long
 * poll where taskdb has it, and by polling; then creates alone, repeated.
 */
function queueThroughput(backend, plan, context) {
  return withSeededTaskdb(backend, `${backend.name}-throughput`, [], context, async (api, _database, taskdb) => {
    const run = { clients: plan.clients, seconds: plan.throughputSeconds, warmupSeconds: plan.throughputWarmupSeconds };
    const cycles = [];
    for (let r = 0; r < plan.throughputReps; r++) {
      const turn = async () => {
        await api.create(randomUUID());
        await api.finish(await claimOne(api));
      };
      cycles.push(await turnsPerSecond(run, turn, taskdb.child.pid));
      context.log(`${backend.name} queue, rep ${r + 1}: ${cycles[r].perSecond.toFixed(0)} create → claim → finish/s`);
    }
    const hasEvents = await api.hasEvents();
    const latencyPlan = { samples: plan.latencySamples, warmup: plan.latencyWarmup };
    const createToClaimByMode = {
      events: hasEvents ? await createToClaim(api, latencyPlan, 'events') : null,
      poll: await createToClaim(api, latencyPlan, 'poll'),
    };
    // Last: the tasks created here stay waiting.
    const creates = [];
    for (let r = 0; r < plan.throughputReps; r++) {
      creates.push(await turnsPerSecond(run, () => api.create(randomUUID()), taskdb.child.pid));
      context.log(`${backend.name} creates alone, rep ${r + 1}: ${creates[r].perSecond.toFixed(0)}/s`);
    }
    return { cycles, creates, createToClaim: createToClaimByMode };
  });
}

/**
 * Part 3: `released` tasks held by workers are given back at once (they go into backoff) while
 * `backlog` older tasks are waiting out theirs; then claims of the newer tasks that are ready.
 * A claim that walks the tasks in backoff costs in proportion to them; without the backlog
 * (backlog 0) is the baseline.
 */
function claimsAfterMassRelease(backend, backlog, plan, context) {
  const { released, ready } = plan.release;
  const segments = [
    { kind: 'backoff', count: backlog },
    { kind: 'in_progress', count: released },
    { kind: 'not_started', count: ready },
  ];
  return withSeededTaskdb(backend, `${backend.name}-release-${backlog}`, segments, { ...context, env: LONG_BACKOFF_ENV }, async (api) => {
    const [releaseMs] = await timed(() =>
      inParallel(released, plan.clients, (k) => api.release(seededTaskId(backlog + k), seededLeaseToken(backlog + k))),
    );
    const claims = [];
    for (let k = 0; k < plan.opWarmup + plan.opSamples; k++) {
      const [ms, claim] = await timed(() => api.claim());
      if (!claim) throw new Error(`nothing left to claim after ${k} claims`);
      if (k >= plan.opWarmup) claims.push(ms);
      await api.finish(claim);
    }
    return { releaseMs, claim: latency(claims) };
  });
}

module.exports = { operationsAtSize, queueThroughput, claimsAfterMassRelease, POLL_PAUSE_MS };
