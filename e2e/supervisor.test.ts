import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AcceptedSchema } from '@pixelmill/contracts';
import { encode, makeBitmap } from './images';

/** `npm start`'s supervisor: it restarts a service that dies and stops everything on SIGTERM. */
describe('npm start supervision', () => {
  let dir: string;
  let supervisor: ChildProcess;
  let output = '';

  const waitFor = async (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = output.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`no ${pattern} in the output:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-start-'));
    supervisor = spawn(process.execPath, [path.resolve(__dirname, '../scripts/start.js'), '--free-ports'], {
      env: { PATH: process.env.PATH, PIXELMILL_DATA_DIR: dir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    supervisor.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    supervisor.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });

  afterAll(async () => {
    if (supervisor.exitCode === null) {
      supervisor.kill('SIGKILL');
      await new Promise((r) => supervisor.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when master is killed, then it is restarted with a line saying so; the docs are served; SIGTERM stops every service', async () => {
    const [, frontend] = await waitFor(/Upload page: (http:\/\/127\.0\.0\.1:\d+)\//, 60_000);
    const pids = [...output.matchAll(/^\s+(\S+)\s+pid (\d+)/gm)].map(([, name, pid]) => ({ name: name!, pid: Number(pid) }));
    expect(pids.map((p) => p.name).sort()).toEqual(['frontend', 'kv', 'master', 'storage', 'taskdb', 'worker']);

    // The public API's documents: the OpenAPI document and the page over it, both named in the output.
    await waitFor(new RegExp(`API docs: ${frontend}/docs \\(OpenAPI: ${frontend}/openapi\\.json\\)`));
    const document = await fetch(`${frontend}/openapi.json`);
    expect(document.status).toBe(200);
    expect(await document.json()).toMatchObject({ openapi: '3.1.0', paths: { '/newImage': expect.any(Object) } });
    const docs = await fetch(`${frontend}/docs`);
    expect([docs.status, docs.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/html/)]);
    await docs.arrayBuffer();

    process.kill(pids.find((p) => p.name === 'master')!.pid, 'SIGKILL');
    await waitFor(/master exited \(SIGKILL\); restarting it/);
    const [, newPid] = await waitFor(/master restarted \(pid (\d+)\)/);

    const upload = await fetch(`${frontend}/newImage`, {
      method: 'POST',
      body: await encode('image/png', makeBitmap(8, 8)),
      headers: { 'content-type': 'image/png' },
    });
    expect(upload.status).toBe(202);
    AcceptedSchema.parse(await upload.json());

    const exited = new Promise<number | null>((resolve) => supervisor.once('exit', (code) => resolve(code)));
    supervisor.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const { pid } of [...pids, { name: 'master', pid: Number(newPid) }]) expect(alive(pid)).toBe(false);
  }, 90_000);
});
