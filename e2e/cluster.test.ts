import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createTestSchema, type TestSchema } from '@pixelmill/kit/testing';
import { encode } from './images';
import { isAlive, listedProcesses, watchOutput } from './launcher-output';
import { leaseProblems, readLeases, waitUntilLeasesHeld } from './leases';
import { countOf, picture, resultProblem, sleep, uploadOnce, uploadUntilAccepted, waitUntilEnded, type Upload } from './upload-client';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startCluster } = require('../scripts/cluster') as typeof import('../scripts/cluster');

type Cluster = Awaited<ReturnType<typeof startCluster>>;

const IMAGES = Number(process.env.CLUSTER_IMAGES ?? 300);
const UPLOADERS = 8;
/** Image i is not sent before i × this after the start: the uploads outlast the kills below. */
const UPLOAD_SPACING_MS = 100;
/** Images sent at once, from the time of the first: a queue, so that every worker holds a task when one is killed. */
const BURST = { from: Math.floor(IMAGES * 0.7), count: 40 };
const WORKERS = 3;
/**
 * One instance of each kind, killed with SIGKILL at these times after the start of the uploads,
 * and restarted. The worker is killed once as many leases are held as there are workers.
 */
const KILLS = [
  { victim: 'master', atMs: 2_500 },
  { victim: 'taskdb-2', atMs: 7_500 },
  { victim: 'storage', atMs: 12_500 },
  { victim: 'frontend-2', atMs: 17_500 },
  { victim: 'worker-3', atMs: (BURST.from + 5) * UPLOAD_SPACING_MS, holdingALease: true },
] as const;
/** How long a killed process stays down before it is started again. */
const DOWN_MS = 1_000;
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const report = (line: string) => process.stdout.write(`cluster: ${line}\n`);

interface Kill {
  victim: string;
  /** ms after the start of the uploads. */
  killedAtMs: number;
  /** When it was started again, and when it was healthy and registered in kv again. */
  startedAgainAtMs: number;
  backAtMs: number;
}

/**
 * The cluster of `npm run start:cluster` (1 kv, 2 taskdbs, 2 storages, 2 masters, 2 frontends,
 * 3 workers; PostgreSQL in a schema of its own, a local S3 server, the upload limit in Redis)
 * while one instance of master, taskdb, storage, frontend and worker is killed with SIGKILL and
 * restarted: nothing accepted is lost, nothing is done twice, no task is ever held twice.
 */
describe('cluster: several instances of every service, one of each killed', () => {
  let dir: string;
  let schema: TestSchema;
  let cluster: Cluster;
  let frontends: string[];
  const figures: Record<string, unknown> = { images: IMAGES };
  const uploads = new Map<number, Upload>();
  const kills: Kill[] = [];
  /** The tests that ran to their end: the folder with the logs is kept when one did not. */
  let completed = 0;
  /** Stops the uploads and the kills when a test fails. */
  const halt = new AbortController();
  let running: Promise<unknown> | undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-cluster-'));
    schema = await createTestSchema('cluster');
    const started = Date.now();
    cluster = await startCluster({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      database: { url: schema.url, schema: schema.schema, poolSize: 4 },
      bucket: 'pixelmill-cluster-test',
      workers: WORKERS,
      redis: { url: REDIS_URL, prefix: `pixelmill-test-${randomBytes(6).toString('hex')}` },
      env: { LOG_LEVEL: 'info', REGISTER_INTERVAL_MS: '1000', REQUEST_TIMEOUT_MS: '5000' },
      envFor: {
        master: { LEASE_MS: '8000', CLAIM_RECHECK_MS: '500' },
        // Each kill may cost a task an attempt; five leave room for every kill to hit the same one.
        taskdb: { REAP_INTERVAL_MS: '500', MAX_ATTEMPTS: '6', RETRY_BASE_MS: '200', RETRY_MAX_MS: '2000' },
        worker: { POLL_WAIT_MS: '5000', ERROR_BACKOFF_MS: '200', ERROR_BACKOFF_MAX_MS: '1000', WORKER_CONCURRENCY: '1' },
        // The shared limit is in the path of every upload, set so high that it never refuses one.
        frontend: { UPLOAD_RATE_PER_MINUTE: '1000000', UPLOAD_BURST: '100000' },
      },
    });
    frontends = cluster.frontends;
    figures.clusterStartMs = Date.now() - started;
    report(`started in ${Date.now() - started} ms; data and logs in ${dir}; PostgreSQL schema ${schema.schema}`);
  }, 240_000);

  afterAll(async () => {
    halt.abort();
    await running;
    await cluster?.stop();
    await schema?.drop();
    const file = path.join(os.tmpdir(), `pixelmill-cluster-report-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ ...figures, kills }, null, 2)}\n`);
    report(`figures and kill timings written to ${file}`);
    if (completed < 3) report(`a test failed: the logs stay in ${path.join(dir, 'logs')}`);
    else if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it(`when ${IMAGES} images are uploaded through both frontends while a master, a taskdb, a storage, a frontend and a worker are killed and restarted, then every image is accepted (refusals retried, on the other frontend)`, async () => {
    const inputs = await Promise.all(Array.from({ length: IMAGES }, (_, i) => encode('image/png', picture(i))));
    const start = Date.now();
    const since = () => Date.now() - start;

    let next = 0;
    const uploading = Promise.all(
      Array.from({ length: UPLOADERS }, async () => {
        while (next < IMAGES) {
          const index = next;
          next += 1;
          const from = index >= BURST.from && index < BURST.from + BURST.count ? BURST.from : index;
          await sleep(from * UPLOAD_SPACING_MS - since(), halt.signal);
          // Even images go to the first frontend, odd ones to the second; a refused try moves to the other.
          uploads.set(index, await uploadUntilAccepted(frontends, index % 2, inputs[index]!, { signal: halt.signal }));
        }
      }),
    );
    const killing = (async () => {
      for (const kill of KILLS) {
        const { victim } = kill;
        await sleep(kill.atMs - since(), halt.signal);
        if ('holdingALease' in kill) {
          // As many leases held as workers (one thread each), the queue keeping them busy: this one
          // almost surely holds one (an attempt it cut shows as a lease ended 'lost').
          const held = await waitUntilLeasesHeld(schema, WORKERS, 15_000);
          report(`${held} leases held when ${victim} is killed`);
          figures.leasesHeldWhenTheWorkerWasKilled = held;
        }
        const killedAtMs = since();
        await cluster.processes[victim]!.stop('SIGKILL');
        report(`${victim} killed at ${killedAtMs} ms`);
        await sleep(DOWN_MS);
        const startedAgainAtMs = since();
        await cluster.start(victim);
        kills.push({ victim, killedAtMs, startedAgainAtMs, backAtMs: since() });
        report(`${victim} started again at ${startedAgainAtMs} ms, back (a server: healthy and registered) at ${since()} ms`);
      }
    })();
    // The first failure stops the others; the cluster is stopped once all have.
    running = Promise.allSettled([uploading, killing]);
    await Promise.all([uploading, killing]).catch((err: unknown) => {
      halt.abort();
      throw err;
    });
    const uploadsMs = since();

    const refusals = [...uploads.values()].flatMap((upload) => upload.refusals);
    const acceptedVia = countOf([...uploads.values()].map((upload) => upload.via));
    const movedToOther = [...uploads.values()].filter(
      (upload) => upload.refusals.length > 0 && upload.via !== upload.refusals[0]!.frontend,
    );
    const perFrontend = Object.fromEntries(frontends.map((url, i) => [`frontend ${i + 1}`, acceptedVia[url] ?? 0]));
    const byReason = countOf(refusals.map((r) => r.refusal));
    Object.assign(figures, {
      uploadsMs,
      accepted: uploads.size,
      acceptedVia: perFrontend,
      refusedTries: refusals.length,
      refusedTriesByReason: byReason,
      acceptedByTheOtherFrontendAfterARefusal: movedToOther.length,
    });
    report(`${uploads.size} of ${IMAGES} accepted in ${uploadsMs} ms; accepted per frontend: ${JSON.stringify(perFrontend)}`);
    report(`${refusals.length} tries refused and retried: ${JSON.stringify(byReason)}`);
    report(`${movedToOther.length} uploads refused by one frontend were accepted by the other`);
    report(`kills (ms after the start of the uploads): ${kills.map((k) => `${k.victim} ${k.killedAtMs} → back ${k.backAtMs}`).join(', ')}`);

    expect(kills.map((kill) => kill.victim)).toEqual(KILLS.map((kill) => kill.victim));
    expect(uploads.size).toBe(IMAGES);
    // One task per image: retries with the same idempotency key never made a second one.
    expect(new Set([...uploads.values()].map((upload) => upload.id)).size).toBe(IMAGES);
    completed += 1;
  }, 240_000);

  it('then every accepted upload ends finished, and its result is pixel-correct through either frontend', async () => {
    expect(uploads.size).toBe(IMAGES);
    const start = Date.now();
    const ended = await waitUntilEnded(
      frontends,
      [...uploads.values()].map((upload) => upload.id),
      120_000,
    );
    const endedMs = Date.now() - start;
    const states = countOf([...uploads.values()].map((upload) => ended.get(upload.id)?.state ?? 'unknown'));
    Object.assign(figures, { allEndedMsAfterUploads: endedMs, states });
    report(`all ended ${endedMs} ms after the last upload: ${JSON.stringify(states)}`);
    const failed = [...ended.entries()].filter(([, status]) => status.state === 'failed').slice(0, 5);
    expect(failed).toEqual([]);
    expect(states).toEqual({ finished: IMAGES });

    const problems: string[] = [];
    const indexes = [...uploads.keys()];
    for (let at = 0; at < indexes.length; at += 8) {
      await Promise.all(
        indexes.slice(at, at + 8).map(async (index) => {
          const { id } = uploads.get(index)!;
          const problem = await resultProblem(frontends[index % frontends.length]!, id, picture(index));
          if (problem) problems.push(`image ${index} (${id}): ${problem}`);
        }),
      );
    }
    figures.pixelCorrect = IMAGES - problems.length;
    report(`${IMAGES - problems.length} results pixel-correct`);
    expect(problems).toEqual([]);
    completed += 1;
  }, 240_000);

  it('then no task finished twice, and no task was ever held by two unexpired leases at once (task_leases)', async () => {
    const leasesOf = await readLeases(schema.url, schema.schema);

    const problems = [...leasesOf].flatMap(([taskId, leases]) => leaseProblems(taskId, leases));
    const perTask = [...leasesOf.values()].map((leases) => leases.length);
    figures.leases = {
      total: perTask.reduce((sum, n) => sum + n, 0),
      tasks: leasesOf.size,
      tasksWithMoreThanOneLease: perTask.filter((n) => n > 1).length,
      mostLeasesOfOneTask: Math.max(0, ...perTask),
      outcomes: countOf([...leasesOf.values()].flat().map((lease) => String(lease.outcome))),
    };
    report(`leases: ${JSON.stringify(figures.leases)}`);
    expect(problems).toEqual([]);
    // Leases were granted for the accepted tasks and no others.
    expect([...leasesOf.keys()].sort()).toEqual([...uploads.values()].map((upload) => upload.id).sort());
    completed += 1;
  });
});

/** The launcher itself, as a user runs it: settings from the environment, a local S3 server, supervision. */
describe('npm run start:cluster', () => {
  let dir: string;
  let schema: TestSchema;
  let launcher: ChildProcess;
  let output: ReturnType<typeof watchOutput>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-start-cluster-'));
    schema = await createTestSchema('start_cluster');
    launcher = spawn(process.execPath, [path.resolve(__dirname, '../scripts/cluster.js')], {
      env: { PATH: process.env.PATH, PIXELMILL_DATA_DIR: dir, LOG_LEVEL: 'warn', DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output = watchOutput(launcher);
  });

  afterAll(async () => {
    if (launcher.exitCode === null && launcher.signalCode === null) {
      // SIGTERM, so that it stops its services; SIGKILL would leave them running.
      const exited = new Promise((resolve) => launcher.once('exit', resolve));
      launcher.kill('SIGTERM');
      const stuck = setTimeout(() => launcher.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(stuck);
    }
    await schema?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it('when started, then it prints both upload pages, each takes an image to finished, a killed master is restarted, and SIGTERM stops every process', async () => {
    await output.waitFor(/pixelmill cluster is running/, 120_000);
    const pages = [...output.text().matchAll(/Upload page: (http:\/\/127\.0\.0\.1:\d+)\//g)].map(([, url]) => url!);
    const pids = listedProcesses(output.text());
    expect(pids.map((p) => p.name).sort()).toEqual(
      [
        'frontend',
        'frontend-2',
        'kv',
        'master',
        'master-2',
        'storage',
        'storage-2',
        'taskdb',
        'taskdb-2',
        'worker',
        'worker-2',
        'worker-3',
      ].sort(),
    );
    expect(pages).toHaveLength(2);
    expect(output.text()).toContain(`schema ${schema.schema}`);
    expect(output.text()).toMatch(/S3: http:\/\/127\.0\.0\.1:\d+ bucket pixelmill \(local s3rver\)/);

    const ids = await Promise.all(
      pages.map(async (page, index) => {
        const answer = await uploadOnce(page, await encode('image/png', picture(index)), randomBytes(8).toString('hex'));
        if (!('id' in answer)) throw new Error(`${page} refused an upload: ${answer.refusal}`);
        return answer.id;
      }),
    );
    const ended = await waitUntilEnded(pages, ids, 60_000);
    expect(ids.map((id) => ended.get(id)?.state)).toEqual(['finished', 'finished']);
    for (const [index, id] of ids.entries()) expect(await resultProblem(pages[index]!, id, picture(index))).toBeUndefined();

    process.kill(pids.find((p) => p.name === 'master-2')!.pid, 'SIGKILL');
    const [, restarted] = await output.waitFor(/master-2 restarted \(pid (\d+)\)/);

    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    launcher.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect([...pids, { name: 'master-2', pid: Number(restarted) }].filter(({ pid }) => isAlive(pid))).toEqual([]);
  }, 180_000);
});
