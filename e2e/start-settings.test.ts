import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode, makeBitmap } from './images';

const START = path.resolve(__dirname, '../scripts/start.js');
const API_KEY = 'api-key-from-the-env-file-0123';
const INTERNAL_TOKEN = 'internal-token-from-the-env-file';

/** `npm start` as a user runs it (after the build): scripts/start.js with an env file and an environment. */
class Launcher {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [START, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in the output:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The services' pids and addresses, as the launcher lists them once everything runs. */
  services(): Record<string, { pid: number; url?: string }> {
    return Object.fromEntries(
      [...this.output.matchAll(/^\s+(\S+)\s+pid (\d+)(?:\s+(http\S+))?$/gm)].map(([, name, pid, url]) => [
        name!,
        { pid: Number(pid), url },
      ]),
    );
  }

  /** Stops it as Ctrl-C does; if it does not stop in time, kills it and the services it listed. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
    ]);
    clearTimeout(timer);
    if (stopped) return;
    this.child.kill('SIGKILL');
    for (const { pid } of Object.values(this.services())) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }
}

/** The environment a process was started with (Linux): what the launcher handed it. */
const environmentOf = (pid: number): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );

describe('npm start with a .env file', () => {
  let dir: string;
  let launcher: Launcher | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-settings-'));
  });

  afterEach(async () => {
    await launcher?.stop();
    launcher = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when .env sets API keys, a token and a limit the environment overrides, then each service runs with its own settings', async () => {
    fs.writeFileSync(
      path.join(dir, '.env'),
      [`API_KEYS=${API_KEY}`, `INTERNAL_TOKEN=${INTERNAL_TOKEN}`, 'MAX_UPLOAD_BYTES=100', 'PNG_DEFLATE_LEVEL=1'].join('\n'),
    );
    // The image is larger than .env's limit: it gets through only if the environment's wins.
    const image = await encode('image/png', makeBitmap(32, 32));
    expect(image.length).toBeGreaterThan(100);

    launcher = new Launcher(['--free-ports', '--dotenv', path.join(dir, '.env')], {
      PIXELMILL_DATA_DIR: path.join(dir, 'data'),
      LOG_LEVEL: 'warn',
      MAX_UPLOAD_BYTES: '1000000',
    });
    const [, frontend] = await launcher.waitFor(/Upload page: (http:\/\/127\.0\.0\.1:\d+)\//);
    const services = launcher.services();
    const upload = (headers: Record<string, string>) =>
      fetch(`${frontend}/newImage`, { method: 'POST', body: image, headers: { 'content-type': 'image/png', ...headers } });

    expect((await upload({})).status).toBe(401);
    expect((await upload({ authorization: `Bearer ${API_KEY}` })).status).toBe(202);

    // The user's internal token replaced the generated one: kv answers to it.
    const kvServices = (headers: Record<string, string>) =>
      fetch(`${services.kv!.url}/keys?${new URLSearchParams({ prefix: 'services/frontend/' }).toString()}`, { headers });
    expect((await kvServices({})).status).toBe(401);
    expect((await kvServices({ authorization: `Bearer ${INTERNAL_TOKEN}` })).status).toBe(200);

    // Each process got what its schema reads, and the worker no secret but its own token.
    const worker = environmentOf(services.worker!.pid);
    expect(worker).toMatchObject({ PNG_DEFLATE_LEVEL: '1', LOG_LEVEL: 'warn', WORKER_TOKEN: expect.any(String) });
    for (const name of ['INTERNAL_TOKEN', 'API_KEYS', 'MAX_UPLOAD_BYTES']) expect(worker).not.toHaveProperty(name);
    expect(environmentOf(services.frontend!.pid)).toMatchObject({ API_KEYS: API_KEY, INTERNAL_TOKEN, MAX_UPLOAD_BYTES: '1000000' });
    expect(environmentOf(services.master!.pid)).toMatchObject({ INTERNAL_TOKEN, MAX_UPLOAD_BYTES: '1000000' });
    expect(environmentOf(services.master!.pid)).not.toHaveProperty('API_KEYS');
    expect(launcher.output).toMatch(/settings: .*API_KEYS \(frontend\)/);
    expect(launcher.output).not.toContain(API_KEY);

    await launcher.stop();
    expect(await launcher.exited).toBe(0);
  }, 90_000);

  it('when a value is bad, in .env or in the environment, then npm start stops before starting anything, naming each', async () => {
    fs.writeFileSync(path.join(dir, '.env'), 'UPLOAD_RATE_PER_MINUTE=abc\n');

    launcher = new Launcher(['--free-ports', '--dotenv', path.join(dir, '.env')], {
      PIXELMILL_DATA_DIR: path.join(dir, 'data'),
      // The worker's: a worker started with it would exit and be restarted again and again.
      WORKER_PNG_DEFLATE_LEVEL: '12',
    });

    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toContain('pixelmill: invalid configuration, nothing started:');
    expect(launcher.output).toMatch(/frontend: UPLOAD_RATE_PER_MINUTE \(from .*\.env\): .*number/);
    expect(launcher.output).toMatch(/worker: WORKER_PNG_DEFLATE_LEVEL \(from the environment\): .*9/);
    expect(launcher.services()).toEqual({});
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('when the named env file does not exist, then npm start says so and stops', async () => {
    launcher = new Launcher(['--dotenv', path.join(dir, 'missing.env')], { PIXELMILL_DATA_DIR: path.join(dir, 'data') });

    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toMatch(/could not start the stack: cannot read .*missing\.env/);
  });
});
