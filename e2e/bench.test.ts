import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
/**
 * The tiny run starts two stacks (the benchmark's, and npm start's defaults) and the floor's servers:
 * under a minute on an idle 2-core machine, nearly 3 on a busy one.
 */
const BENCH_TIMEOUT_MS = 240_000;

interface Figure {
  median: number;
  min: number;
  max: number;
  values: number[];
}

interface Results {
  tiny: boolean;
  machine: { cores: number; cpuModel: string; memoryGiB: number; node: string };
  settings: { rawThreads: number; workerConcurrency: number; longPoll: boolean };
  figures: Record<string, Figure>;
  targets: Array<{ id: string; median: number; met: boolean; moonshot?: { cmp: string; value: number; met: boolean } }>;
  floor: { services: string[]; images: number; inFlight: number; sqliteSynchronous: string; framework: Record<string, string> };
  startDefaults: { uploads: number; accepted: number; refused: number; refusedWithoutRetryAfter: number; seconds: number };
}

/** Runs `node bench/bench.js` with the given arguments; resolves with its exit code and output. */
function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'bench.js'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // SIGINT lets the benchmark stop its stack and remove its folder.
    const timer = setTimeout(() => child.kill('SIGINT'), BENCH_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const SERVICES = ['kv', 'taskdb', 'storage', 'master', 'frontend', 'worker'];
const PLUMBING = ['frontend', 'master', 'storage', 'taskdb', 'kv'];

/** Figures that are a rate, a duration or a size: above zero in any sound run. */
const POSITIVE = [
  'raw.png512.imagesPerSecond',
  'raw.png1080.imagesPerSecond',
  'raw.png512.singleImageMs',
  'raw.png1080.singleImageMs',
  'pipeline.png512.imagesPerSecond',
  'pipeline.png512.ratioToRaw',
  'pipeline.png1080.imagesPerSecond',
  'pipeline.png1080.ratioToRaw',
  'idle.latencyMedianMs',
  'idle.latencyP90Ms',
  'worker.png512.cpuMsPerImage',
  'worker.png1080.cpuMsPerImage',
  'memory.workerPeakRss1080MB',
  ...SERVICES.map((name) => `memory.peakRss.${name}MB`),
  ...['getSequential', 'getConcurrent', 'setSequential', 'upload1MB', 'download1MB'].map((call) => `contractClient.${call}.cpuUsPerCall`),
  'contractClient.getSequential.wallMsPerCall',
  // The floor: its servers move the same bytes and make the same commits, so they cost CPU.
  'floor.png512.imagesPerSecond',
  'floor.png512.cpuMsPerImage',
  'plumbing.png512.ratioToFloor',
  'floor.png1080.imagesPerSecond',
  'floor.png1080.cpuMsPerImage',
  'plumbing.png1080.ratioToFloor',
  'raw.png512.cpuMsPerImage',
  'raw.png1080.cpuMsPerImage',
  'floor.idleLatencyMedianMs',
  // The floor with the image work: what the machine allows with bare hops around the real transform.
  'floorWork.png512.imagesPerSecond',
  'floorWork.png1080.imagesPerSecond',
  'floorWork.png512.ratioToRaw',
  'floorWork.png1080.ratioToRaw',
  'floorWork.png512.cpuMsPerImage',
  'floorWork.png1080.cpuMsPerImage',
  'floorWork.idleLatencyMedianMs',
  'plumbing.png512.ratioToFloorWork',
  'plumbing.png1080.ratioToFloorWork',
  // The same floor on express + axios: the design card's HTTP packages by themselves.
  'floorFramework.png512.imagesPerSecond',
  'floorFramework.png1080.imagesPerSecond',
  'floorFramework.png512.cpuMsPerImage',
  'floorFramework.png1080.cpuMsPerImage',
  'floorFramework.png512.ratioToFloor',
  'floorFramework.png1080.ratioToFloor',
  'plumbing.png512.ratioToFrameworkFloor',
  'plumbing.png1080.ratioToFrameworkFloor',
  'floorFrameworkWork.png512.imagesPerSecond',
  'floorFrameworkWork.png1080.imagesPerSecond',
  'floorFrameworkWork.png512.ratioToRaw',
  'floorFrameworkWork.png1080.ratioToRaw',
];

/**
 * Figures that only need to be numbers: CPU time is counted in clock ticks (10 ms), so a few
 * images may cost a service none; an overhead or a growth may come out at or below zero.
 */
const FINITE = [
  'idle.overheadMs',
  'plumbing.png512.cpuMsPerImage',
  'plumbing.png1080.cpuMsPerImage',
  'plumbing.idleCpuMsPerSecond',
  ...PLUMBING.map((name) => `plumbing.png512.${name}.cpuMsPerImage`),
  'client.png512.cpuMsPerImage',
  'memory.bigImage.frontendGrowthMB',
  'memory.bigImage.storageGrowthMB',
  'memory.bigImage.masterGrowthMB',
  'floorWork.idleOverheadMs',
  ...PLUMBING.map((name) => `floor.png512.${name}.cpuMsPerImage`),
  ...PLUMBING.map((name) => `floor.png1080.${name}.cpuMsPerImage`),
  ...PLUMBING.map((name) => `floorFramework.png512.${name}.cpuMsPerImage`),
  ...PLUMBING.map((name) => `floorFramework.png1080.${name}.cpuMsPerImage`),
  'startDefaults.acceptedShare',
  'startDefaults.accepted',
  'startDefaults.acceptedPerSecond',
  'startDefaults.refused',
  'startDefaults.refusedWithoutRetryAfter',
];

interface Latency {
  medianMs: number;
  p99Ms: number;
  samples: number;
}

interface ScaleResults {
  benchmark: string;
  quick: boolean;
  plan: { sizes: number[]; storageFillers: number[] };
  backends: Record<string, { available: boolean; reason?: string }>;
  taskdb: Record<string, Record<string, { rows: number; ops: Record<string, Latency> }>>;
  queue: Record<string, { cycles: Array<{ perSecond: number }>; creates: Array<{ perSecond: number }>; createToClaim: { poll: Latency } }>;
  release: Record<string, { baseline: { claim: Latency }; backlog: { claim: Latency } }>;
  storage: Record<string, Record<string, { put: Latency; get: Latency }>>;
  targets: Array<{ id: string; measured: number; met: boolean }>;
  failures: Array<{ what: string; error: string }>;
}

/** The benchmark keeps working: the tiny run produces every figure. Its speed goals are its own to check. */
describe('npm run bench', () => {
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-bench-test-'));
  });

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(
    'when run with --tiny, then it prints the table and writes every figure to the JSON file',
    async () => {
      const out = path.join(dir, 'results.json');

      const { code, stdout, stderr } = await runBench(['--tiny', '--out', out]);

      if (code !== 0) throw new Error(`bench exited with ${code}:\n${stderr.slice(-4000)}`);
      expect(stdout).toContain('| measure');
      expect(stdout).toContain('pipeline ÷ raw, 512×512');
      expect(stdout).toContain('plumbing ÷ its floor, 512×512');
      expect(stdout).toContain("npm start defaults: share of one client's 50 uploads accepted");
      // The side-by-side tables, one per image size: each service's CPU per image beside its floor's,
      // bare and on express + axios.
      expect(stdout).toContain('the same per 1920×1080 image');
      for (const name of [...PLUMBING, 'total'])
        expect(
          stdout.match(new RegExp(`^\\| ${name} +\\| [0-9.]+ ms +\\| [0-9.]+ ms +\\| [0-9.–]+ +\\| [0-9.]+ ms +\\|`, 'gm')),
        ).toHaveLength(2);
      const results = JSON.parse(fs.readFileSync(out, 'utf8')) as Results;
      expect(results.tiny).toBe(true);
      expect(results.machine.cores).toBeGreaterThan(0);
      expect(results.machine.cpuModel).not.toBe('');
      expect(results.machine.node).toBe(process.version);
      expect(results.settings.rawThreads).toBeGreaterThan(0);
      for (const id of POSITIVE) {
        expect({ id, figure: results.figures[id] }).toEqual({ id, figure: expect.objectContaining({ median: expect.any(Number) }) });
        expect({ id, positive: results.figures[id]!.min > 0 }).toEqual({ id, positive: true });
      }
      for (const id of FINITE) {
        expect({ id, finite: Number.isFinite(results.figures[id]?.median) }).toEqual({ id, finite: true });
      }
      expect(results.floor.services.sort()).toEqual(['frontend', 'master', 'storage', 'taskdb']);
      expect(results.floor.framework).toEqual({ express: expect.stringMatching(/^5\./), axios: expect.stringMatching(/^1\./) });
      // Every upload is answered, accepted or refused by the rate limit, and a refusal says when to come back.
      expect(results.startDefaults.uploads).toBe(50);
      expect(results.startDefaults.accepted + results.startDefaults.refused).toBe(50);
      expect(results.startDefaults.refusedWithoutRetryAfter).toBe(0);
      // Which targets the table judges (whether they are met is the benchmark's business, not the test's).
      expect(results.targets.map((t) => t.id).sort()).toEqual(
        [
          'idle.overheadMs',
          'memory.bigImage.frontendGrowthMB',
          'memory.bigImage.masterGrowthMB',
          'memory.bigImage.storageGrowthMB',
          'pipeline.png1080.ratioToRaw',
          'pipeline.png512.imagesPerSecond',
          'pipeline.png512.ratioToRaw',
          'plumbing.png512.cpuMsPerImage',
          'plumbing.png512.ratioToFloor',
          'startDefaults.acceptedShare',
        ].sort(),
      );
      expect(results.targets.filter((t) => t.moonshot).map((t) => t.id)).toHaveLength(9);
    },
    BENCH_TIMEOUT_MS + 30_000,
  );

  it(
    'when run with --scale --quick, then it prints a table per part and writes the figures of every backend the build has',
    async () => {
      const out = path.join(dir, 'scale.json');

      // The cluster part has its own end-to-end test; here, only that each measurement still runs.
      const { code, stdout, stderr } = await runBench(['--scale', '--quick', '--only', 'taskdb,queue,release,storage', '--out', out]);

      if (code !== 0) throw new Error(`bench --scale exited with ${code}:\n${stderr.slice(-4000)}`);
      expect(stdout).toContain('taskdb as the table grows');
      expect(stdout).toContain('Claims after a mass release');
      expect(fs.readFileSync(out.replace(/\.json$/, '.md'), 'utf8')).toContain('| call');
      const results = JSON.parse(fs.readFileSync(out, 'utf8')) as ScaleResults;
      expect(results).toEqual(expect.objectContaining({ benchmark: 'pixelmill-scale', quick: true, failures: [] }));
      const positive = (what: string, figure: Latency | undefined) =>
        expect({ what, positive: (figure?.medianMs ?? 0) > 0 }).toEqual({ what, positive: true });
      const engines = ['sqlite', 'postgres'].filter((name) => results.backends[name]!.available);
      expect(engines).toContain('sqlite');
      for (const engine of engines) {
        for (const size of results.plan.sizes) {
          for (const op of ['claim', 'get', 'changeState', 'listFirst', 'listDeep'])
            positive(`${engine} ${size} ${op}`, results.taskdb[engine]?.[size]?.ops[op]);
        }
        expect(results.queue[engine]!.cycles[0]!.perSecond).toBeGreaterThan(0);
        expect(results.queue[engine]!.creates[0]!.perSecond).toBeGreaterThan(0);
        positive(`${engine} create → claim`, results.queue[engine]!.createToClaim.poll);
        positive(`${engine} claim, none in backoff`, results.release[engine]?.baseline.claim);
        positive(`${engine} claim, backlog in backoff`, results.release[engine]?.backlog.claim);
        expect(results.targets.map((t) => t.id)).toEqual(
          expect.arrayContaining([`taskdb.${engine}.claim.ratio`, `release.${engine}.ratio`]),
        );
      }
      for (const store of ['folder', 's3'].filter((name) => results.backends[name]!.available)) {
        for (const filler of results.plan.storageFillers) {
          positive(`${store} ${filler} PUT`, results.storage[store]?.[filler]?.put);
          positive(`${store} ${filler} GET`, results.storage[store]?.[filler]?.get);
        }
      }
    },
    BENCH_TIMEOUT_MS + 30_000,
  );
});
