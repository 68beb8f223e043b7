import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AcceptedSchema, TaskStatusSchema } from '@pixelmill/contracts';
import { compare, decode, encode, type Bitmap } from './images';
import { picture as pictureOf } from './upload-client';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;

const IMAGES = Number(process.env.CHAOS_IMAGES ?? 200);
const UPLOADERS = 8;
const VICTIMS = ['worker', 'master', 'taskdb', 'storage', 'kv'] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = (line: string) => process.stdout.write(`chaos: ${line}\n`);

/** The pictures are all of one size here. */
const picture = (index: number): Bitmap => pictureOf(index, { width: 96, height: 64 });

/**
 * Kills services with SIGKILL one after another while 200 images are in work, restarts each,
 * and checks that every accepted image ends finished and correct: nothing lost, nothing failed.
 */
describe('chaos: nothing accepted is lost', () => {
  let dir: string;
  let stack: Stack;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-chaos-'));
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      workers: 2,
      env: { LOG_LEVEL: 'info', REGISTER_INTERVAL_MS: '1000', REQUEST_TIMEOUT_MS: '5000' },
      envFor: {
        master: { LEASE_MS: '10000', CLAIM_RECHECK_MS: '500' },
        taskdb: { REAP_INTERVAL_MS: '500' },
        worker: { POLL_WAIT_MS: '5000', ERROR_BACKOFF_MS: '200', ERROR_BACKOFF_MAX_MS: '1000' },
        frontend: { UPLOAD_RATE_PER_MINUTE: '0' },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finishes every accepted image correctly through SIGKILLs of worker, master, taskdb, storage and kv', async () => {
    const frontend = stack.urls.frontend!;
    const inputs = await Promise.all(Array.from({ length: IMAGES }, (_, i) => encode('image/png', picture(i))));
    const accepted = new Map<string, number>();
    let refusedTries = 0;

    /** Uploads one image, retrying with the same idempotency key until it is accepted. */
    const submit = async (index: number) => {
      const key = randomUUID();
      for (let attempt = 1; ; attempt += 1) {
        try {
          const response = await fetch(`${frontend}/newImage`, {
            method: 'POST',
            body: inputs[index],
            headers: { 'content-type': 'image/png', 'idempotency-key': key },
            signal: AbortSignal.timeout(10_000),
          });
          const body: unknown = await response.json();
          if (response.status === 202) {
            accepted.set(AcceptedSchema.parse(body).id, index);
            return;
          }
          expect(response.status).toBeGreaterThanOrEqual(500);
        } catch (err) {
          if (!(err instanceof Error) || !/fetch failed|timeout|aborted/i.test(err.message)) throw err;
        }
        refusedTries += 1;
        if (attempt > 200) throw new Error(`image ${index} was never accepted`);
        await sleep(100);
      }
    };

    let next = 0;
    const uploading = Promise.all(
      Array.from({ length: UPLOADERS }, async () => {
        while (next < IMAGES) {
          const index = next;
          next += 1;
          await submit(index);
          await sleep(40);
        }
      }),
    );

    const started = Date.now();
    const downtimes: string[] = [];
    await sleep(1_000);
    for (const victim of VICTIMS) {
      const killedAt = Date.now();
      await stack.processes[victim]!.stop('SIGKILL');
      await sleep(500);
      await stack.start(victim);
      downtimes.push(`${victim} ${Date.now() - killedAt} ms`);
      await sleep(1_500);
    }
    const lastRestart = Date.now();
    await uploading;
    expect(accepted.size).toBe(IMAGES);

    const deadline = Date.now() + 120_000;
    const states = new Map<string, string>();
    for (;;) {
      states.clear();
      for (const id of accepted.keys()) {
        const response = await fetch(`${frontend}/image/isReady?id=${id}`);
        expect(response.status).toBe(200);
        const status = TaskStatusSchema.parse(await response.json());
        states.set(id, status.state === 'failed' ? `failed: ${status.error}` : status.state);
      }
      const open = [...states.values()].filter((s) => s === 'not_started' || s === 'in_progress').length;
      if (open === 0 || Date.now() > deadline) break;
      await sleep(250);
    }
    const recoveredMs = Date.now() - lastRestart;
    const counts = [...states.values()].reduce<Record<string, number>>((n, s) => ({ ...n, [s]: (n[s] ?? 0) + 1 }), {});

    report(`${IMAGES} submitted, ${accepted.size} accepted, ${refusedTries} upload tries refused or cut while services were down`);
    report(`killed and restarted: ${downtimes.join(', ')}`);
    report(`all done ${recoveredMs} ms after the last restart, ${Date.now() - started} ms after the first kill`);
    report(`states: ${JSON.stringify(counts)}`);
    expect(counts).toEqual({ finished: IMAGES });

    let checked = 0;
    for (const [id, index] of accepted) {
      const result = await fetch(`${frontend}/image/get?id=${id}`);
      expect(result.status).toBe(200);
      const after = decode('image/png', Buffer.from(await result.arrayBuffer()));
      expect(compare(picture(index), after, (r, g, b, a) => [b, g, r, a])).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
      checked += 1;
    }
    report(`${checked} results pixel-correct`);

    const storage = path.join(stack.dataDir, 'storage');
    expect(fs.readdirSync(path.join(storage, 'tmp'))).toEqual([]);
    // Each result is stored under its attempt's key; an attempt cut off by a kill may have left one too.
    const resultsOf = new Map<string, number>();
    for (const name of fs.readdirSync(path.join(storage, 'finished'))) {
      const [id, attempt] = name.split('_');
      expect(accepted.has(id!)).toBe(true);
      expect(Number(attempt)).toBeGreaterThanOrEqual(1);
      resultsOf.set(id!, (resultsOf.get(id!) ?? 0) + 1);
    }
    expect([...resultsOf.keys()].sort()).toEqual([...accepted.keys()].sort());
  }, 300_000);
});
