import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KvListSchema } from '@pixelmill/contracts';
import { freePort, startServiceProcess, type ServiceProcess } from '@pixelmill/kit/testing';

/**
 * What the Dockerfile does, step by step, without Docker: for each app, `turbo prune` into a
 * folder of its own, `npm ci` from the pruned lockfile, build that app with turbo, drop the dev
 * dependencies, then start `apps/<app>/dist/main.js` from that folder alone, configured by
 * environment variables only (kv first, the others pointed at it). The folders are under the
 * system's temporary folder, so Node's module resolution cannot climb into this repository's
 * node_modules: a runtime dependency an app does not declare makes it fail to start here.
 */

const ROOT = path.resolve(__dirname, '..');
const APPS = ['kv', 'taskdb', 'storage', 'master', 'frontend', 'worker'] as const;
type App = (typeof APPS)[number];
const SERVERS = APPS.filter((app) => app !== 'worker');
/** Pipelines run at once: installs and builds are CPU-bound and these machines have few cores. */
const LANES = Math.max(1, Math.min(3, os.availableParallelism()));

/** The environment of the commands: ours without npm's and turbo's run-time variables (we may run under `npm test`). */
const toolEnv = (): NodeJS.ProcessEnv => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|NODE_PATH$|INIT_CWD$|TURBO_)/i.test(name)));
  return { ...env, TURBO_TELEMETRY_DISABLED: '1', CI: 'true' };
};

const run = (command: string, args: string[], cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: toolEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
        reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${tail}`));
      } else resolve(stdout);
    });
  });

/** Bytes of the files under a folder; symbolic links count as themselves (workspace links are not followed). */
function sizeOf(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += sizeOf(full);
    else total += fs.lstatSync(full).size;
  }
  return total;
}

/** Every node_modules folder of a tree (the root's and those nested in workspaces). */
function nodeModulesSize(tree: string): number {
  const folders = [path.join(tree, 'node_modules')];
  for (const group of ['apps', 'packages']) {
    const groupDir = path.join(tree, group);
    if (!fs.existsSync(groupDir)) continue;
    for (const ws of fs.readdirSync(groupDir)) folders.push(path.join(groupDir, ws, 'node_modules'));
  }
  return folders.filter((f) => fs.existsSync(f)).reduce((sum, f) => sum + sizeOf(f), 0);
}

const installScripts = (tree: string): string[] => {
  const lock = JSON.parse(fs.readFileSync(path.join(tree, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { hasInstallScript?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([, entry]) => entry.hasInstallScript)
    .map(([name]) => name);
};
const SQLITE = 'node_modules/better-sqlite3';
const SQLITE_ADDON = path.join('build', 'Release', 'better_sqlite3.node');
const versionOf = (pkgDir: string): string =>
  (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;

interface Pruned {
  app: App;
  /** The pruned, installed, built tree with production dependencies only. */
  tree: string;
  nodeModulesBytes: number;
  /** Seconds of each step. */
  steps: Record<string, number>;
}

describe('each app pruned and started on its own (what its image does)', () => {
  let dir: string;
  const pruned = new Map<App, Pruned>();
  const running: ServiceProcess[] = [];
  let prepareSeconds = 0;

  /**
   * better-sqlite3 compiles from source here (two to three minutes on these machines), and this
   * repository's own install has compiled it already: a tree with the same version installs
   * without scripts, takes that build (the same file its own compile would produce) and runs its
   * other install scripts with `npm rebuild` (esbuild's, which the contracts' build uses), as
   * `npm ci` would have. Without a build here, kv's tree compiles it and the later trees take that.
   */
  let compiledSqlite: Promise<string> | undefined = fs.existsSync(path.join(ROOT, SQLITE, SQLITE_ADDON))
    ? Promise.resolve(path.join(ROOT, SQLITE))
    : undefined;

  const prepare = async (app: App): Promise<Pruned> => {
    const steps: Record<string, number> = {};
    let last = Date.now();
    const step = (name: string) => {
      steps[name] = (Date.now() - last) / 1000;
      last = Date.now();
    };
    const out = path.join(dir, app, 'out');
    const tree = path.join(dir, app, 'app');
    await run(path.join(ROOT, 'node_modules', '.bin', 'turbo'), ['prune', `@pixelmill/${app}`, '--docker', '--out-dir', out], ROOT);
    // As the Dockerfile: manifests and lockfile, install, then the sources and the root compiler options.
    step('prune');
    fs.cpSync(path.join(out, 'json'), tree, { recursive: true });
    const scripts = installScripts(tree);
    const reuse = compiledSqlite !== undefined && scripts.includes(SQLITE);
    const npmCi = ['ci', '--prefer-offline', '--no-audit', '--no-fund'];
    if (reuse) {
      await run('npm', [...npmCi, '--ignore-scripts'], tree);
      const from = await compiledSqlite!;
      const to = path.join(tree, SQLITE);
      expect(versionOf(to)).toBe(versionOf(from));
      fs.mkdirSync(path.dirname(path.join(to, SQLITE_ADDON)), { recursive: true });
      fs.copyFileSync(path.join(from, SQLITE_ADDON), path.join(to, SQLITE_ADDON));
      const others = scripts.filter((name) => name !== SQLITE).map((name) => name.replace(/^.*node_modules\//, ''));
      if (others.length > 0) await run('npm', ['rebuild', ...others], tree);
    } else {
      const install = run('npm', npmCi, tree);
      if (scripts.includes(SQLITE) && compiledSqlite === undefined) {
        compiledSqlite = install.then(() => path.join(tree, SQLITE));
      }
      await install;
    }
    step(reuse ? 'install (no scripts)' : 'install');
    fs.cpSync(path.join(out, 'full'), tree, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'tsconfig.base.json'), path.join(tree, 'tsconfig.base.json'));
    await run(
      path.join(tree, 'node_modules', '.bin', 'turbo'),
      ['run', 'build', `--filter=@pixelmill/${app}`, '--output-logs=errors-only'],
      tree,
    );
    step('build');
    await run('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund'], tree);
    step('drop dev');
    return { app, tree, nodeModulesBytes: nodeModulesSize(tree), steps };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-prune-'));
    const started = Date.now();
    // kv first and taskdb last: without this repository's build to take, kv compiles better-sqlite3 and taskdb takes kv's.
    const queue: App[] = ['kv', 'storage', 'master', 'frontend', 'worker', 'taskdb'];
    const lane = async () => {
      for (let app = queue.shift(); app; app = queue.shift()) pruned.set(app, await prepare(app));
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    prepareSeconds = (Date.now() - started) / 1000;
    const lines = APPS.map((app) => {
      const p = pruned.get(app)!;
      const steps = Object.entries(p.steps).map(([name, seconds]) => `${name} ${seconds.toFixed(0)} s`);
      return `  ${app.padEnd(9)} node_modules ${(p.nodeModulesBytes / 2 ** 20).toFixed(1).padStart(6)} MiB  (${steps.join(', ')})`;
    });
    console.log(`pruned apps, dev dependencies dropped (${prepareSeconds.toFixed(0)} s, ${LANES} at once):\n${lines.join('\n')}`);
  }, 30 * 60_000);

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a pruned tree holds its app, the packages it uses and no dev dependency', async () => {
    for (const app of APPS) {
      const { tree } = pruned.get(app)!;
      expect(fs.readdirSync(path.join(tree, 'apps'))).toEqual([app]);
      expect(fs.readdirSync(path.join(tree, 'node_modules', '@pixelmill')).sort()).toEqual(['contracts', 'kit', app].sort());
      // Nothing above the tree offers modules: a dependency the app misses cannot be found elsewhere.
      for (let up = path.dirname(tree); ; up = path.dirname(up)) {
        expect(fs.existsSync(path.join(up, 'node_modules'))).toBe(false);
        if (path.dirname(up) === up) break;
      }
      // Dev tools of the repository (here in its node_modules) are out of reach from the app's folder.
      const reachable = await run(
        process.execPath,
        ['-e', "for (const m of ['typescript', 'jest', 'turbo']) { try { require.resolve(m); console.log(m); } catch {} }"],
        path.join(tree, 'apps', app),
      );
      expect(reachable.trim()).toBe('');
    }
  });

  test('each server starts from its pruned tree alone and answers /healthz; the worker stays up and registers nothing', async () => {
    const internal = randomBytes(18).toString('base64url');
    const worker = randomBytes(18).toString('base64url');
    const env = (app: App, port?: number) => ({
      PATH: process.env.PATH,
      HOME: path.join(dir, app),
      LOG_LEVEL: 'warn',
      INTERNAL_TOKEN: internal,
      WORKER_TOKEN: worker,
      ...(port === undefined ? {} : { PORT: String(port), HOST: '127.0.0.1' }),
      ...(['kv', 'taskdb', 'storage'].includes(app) ? { DATA_DIR: path.join(dir, app, 'data') } : {}),
    });
    const start = async (app: App, extra: Record<string, string>, port?: number) => {
      const { tree } = pruned.get(app)!;
      const proc = await startServiceProcess({
        name: app,
        script: path.join(tree, 'apps', app, 'dist', 'main.js'),
        cwd: path.join(tree, 'apps', app),
        env: { ...env(app, port), ...extra },
        port,
        logFile: path.join(dir, `${app}.log`),
        healthTimeoutMs: 30_000,
      });
      running.push(proc);
      return proc;
    };
    const health = async (url: string) => (await fetch(`${url}/healthz`)).status;

    const kvPort = await freePort();
    const kv = await start('kv', {}, kvPort);
    expect(await health(kv.url!)).toBe(200);
    const kvUrl = kv.url!;

    const others = await Promise.all(
      SERVERS.filter((app) => app !== 'kv').map(async (app) => start(app, { KV_URL: kvUrl }, await freePort())),
    );
    for (const proc of others) expect([proc.name, await health(proc.url!)]).toEqual([proc.name, 200]);

    // Each server found kv from KV_URL alone and put its address there.
    const listServices = async () => {
      const response = await fetch(`${kvUrl}/keys?prefix=services/`, { headers: { authorization: `Bearer ${internal}` } });
      expect(response.status).toBe(200);
      // services/<name>/<instance> → name
      return KvListSchema.parse(await response.json()).items.map((item) => item.key.split('/')[1]!);
    };
    const deadline = Date.now() + 15_000;
    while ((await listServices()).length < SERVERS.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await listServices()).sort()).toEqual([...SERVERS].sort());

    // The worker: no port, only its token; it stays up, registers nothing and stops cleanly on SIGTERM.
    const { tree } = pruned.get('worker')!;
    const workerProc = await startServiceProcess({
      name: 'worker',
      script: path.join(tree, 'apps', 'worker', 'dist', 'main.js'),
      cwd: path.join(tree, 'apps', 'worker'),
      env: {
        PATH: process.env.PATH,
        HOME: path.join(dir, 'worker'),
        LOG_LEVEL: 'info',
        KV_URL: kvUrl,
        WORKER_TOKEN: worker,
        WORKER_CONCURRENCY: '1',
      },
      logFile: path.join(dir, 'worker.log'),
    });
    running.push(workerProc);
    await new Promise((r) => setTimeout(r, 3_000));
    const log = () => fs.readFileSync(path.join(dir, 'worker.log'), 'utf8');
    expect([workerProc.exited(), log()]).toEqual([false, expect.stringContaining('worker started')]);
    expect((await listServices()).sort()).toEqual([...SERVERS].sort());
    expect([await workerProc.stop('SIGTERM'), log()]).toEqual([0, expect.any(String)]);
  }, 120_000);
});
