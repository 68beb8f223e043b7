import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AcceptedSchema } from '@pixelmill/contracts';
import { encode, makeBitmap } from './images';
import { isAlive, listedProcesses, watchOutput } from './launcher-output';

/** `npm start`'s supervisor: it restarts a service that dies and stops everything on SIGTERM. */
describe('npm start supervision', () => {
  let dir: string;
  let supervisor: ChildProcess;
  let output: ReturnType<typeof watchOutput>;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-start-'));
    supervisor = spawn(process.execPath, [path.resolve(__dirname, '../scripts/start.js'), '--free-ports'], {
      env: { PATH: process.env.PATH, PIXELMILL_DATA_DIR: dir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output = watchOutput(supervisor);
  });

  afterAll(async () => {
    if (supervisor.exitCode === null) {
      supervisor.kill('SIGKILL');
      await new Promise((r) => supervisor.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when master is killed, then it is restarted with a line saying so; the docs are served; SIGTERM stops every service', async () => {
    const [, frontend] = await output.waitFor(/Upload page: (http:\/\/127\.0\.0\.1:\d+)\//, 60_000);
    const pids = listedProcesses(output.text());
    expect(pids.map((p) => p.name).sort()).toEqual(['frontend', 'kv', 'master', 'storage', 'taskdb', 'worker']);

    // The public API's documents: the OpenAPI document and the page over it, both named in the output.
    await output.waitFor(new RegExp(`API docs: ${frontend}/docs \\(OpenAPI: ${frontend}/openapi\\.json\\)`));
    const document = await fetch(`${frontend}/openapi.json`);
    expect(document.status).toBe(200);
    expect(await document.json()).toMatchObject({ openapi: '3.1.0', paths: { '/newImage': expect.any(Object) } });
    const docs = await fetch(`${frontend}/docs`);
    expect([docs.status, docs.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/html/)]);
    await docs.arrayBuffer();

    process.kill(pids.find((p) => p.name === 'master')!.pid, 'SIGKILL');
    await output.waitFor(/master exited \(SIGKILL\); restarting it/);
    const [, newPid] = await output.waitFor(/master restarted \(pid (\d+)\)/);

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
    for (const { pid } of [...pids, { name: 'master', pid: Number(newPid) }]) expect(isAlive(pid)).toBe(false);
  }, 90_000);
});
