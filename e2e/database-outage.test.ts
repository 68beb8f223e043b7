import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ErrorBodySchema } from '@pixelmill/contracts';
import { createTestSchema, startTcpProxy, type TcpProxy, type TestSchema } from '@pixelmill/kit/testing';
import { encode } from './images';
import { countOf, picture, resultProblem, sleep, uploadOnce, uploadUntilAccepted, waitUntilEnded, type Refusal } from './upload-client';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;
type Phase = 'before' | 'during' | 'after';

/** How long PostgreSQL stays out of reach: at least this, and until every probe below has answered. */
const OUTAGE_MS = 5_000;
const UPLOADERS = 3;

const report = (line: string) => process.stdout.write(`database outage: ${line}\n`);

/**
 * PostgreSQL "down" for one stack only (other test runs share the server): taskdb and kv reach it
 * through a TCP proxy the test cuts, which resets every connection and each new one for 5 s.
 */
describe('database outage: PostgreSQL out of reach for a few seconds mid-run', () => {
  let dir: string;
  let schema: TestSchema;
  let proxy: TcpProxy;
  let stack: Stack;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-outage-'));
    schema = await createTestSchema('outage');
    const database = new URL(schema.url);
    proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
    database.host = `127.0.0.1:${proxy.port}`;
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      database: { url: database.toString(), schema: schema.schema, poolSize: 4 },
      env: { LOG_LEVEL: 'info', REQUEST_TIMEOUT_MS: '5000' },
      envFor: {
        master: { LEASE_MS: '8000', CLAIM_RECHECK_MS: '500' },
        // An attempt cut off by the outage is retried; a few spare ones, so none fails for it.
        taskdb: { REAP_INTERVAL_MS: '500', MAX_ATTEMPTS: '6', RETRY_BASE_MS: '200', RETRY_MAX_MS: '2000' },
        worker: { POLL_WAIT_MS: '5000', ERROR_BACKOFF_MS: '200', ERROR_BACKOFF_MAX_MS: '1000', WORKER_CONCURRENCY: '1' },
        frontend: { UPLOAD_RATE_PER_MINUTE: '0' },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await proxy?.close();
    await schema?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** One call during the outage: its status and error code. */
  const probe = async (url: string, init: RequestInit = {}): Promise<{ status: number; code?: string }> => {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text || 'null'));
    return { status: response.status, ...(parsed.success ? { code: parsed.data.error.code } : {}) };
  };

  it('when PostgreSQL is cut off for 5 s, then the services answer 503 meanwhile, recover on their own, and every accepted upload ends finished and correct', async () => {
    const frontend = stack.urls.frontend!;
    const internal = { authorization: `Bearer ${stack.tokens!.internal}` };
    const inputs = new Map<number, Buffer>();
    const bytesOf = async (index: number) => inputs.get(index) ?? inputs.set(index, await encode('image/png', picture(index))).get(index)!;
    let phase: Phase = 'before';
    const accepted: Array<{ index: number; id: string; sent: Phase; answered: Phase }> = [];
    const refused: Array<{ sent: Phase; refusal: Refusal }> = [];

    let next = 0;
    let uploading = true;
    const uploaders = Promise.all(
      Array.from({ length: UPLOADERS }, async () => {
        while (uploading) {
          const index = next;
          next += 1;
          const sent = phase;
          const answer = await uploadOnce(frontend, await bytesOf(index), randomUUID());
          if ('id' in answer) accepted.push({ index, id: answer.id, sent, answered: phase });
          else refused.push({ sent, refusal: answer.refusal });
          await sleep(100);
        }
      }),
    );
    try {
      const running = Date.now();
      while (accepted.length < 10) {
        if (Date.now() - running > 60_000) throw new Error(`only ${accepted.length} uploads accepted in a minute before the outage`);
        await sleep(100);
      }

      await proxy.cut();
      phase = 'during';
      const cutAt = Date.now();
      const probes = {
        'frontend upload': await probe(`${frontend}/newImage`, {
          method: 'POST',
          body: await bytesOf(next++),
          headers: { 'content-type': 'image/png', accept: 'application/json' },
        }),
        'frontend isReady': await probe(`${frontend}/image/isReady?id=${accepted[0]!.id}`),
        'taskdb get': await probe(`${stack.urls.taskdb}/tasks/${accepted[0]!.id}`, { headers: internal }),
        'kv get': await probe(`${stack.kvUrl}/keys/${encodeURIComponent('services/taskdb')}`, { headers: internal }),
      };
      await sleep(OUTAGE_MS - (Date.now() - cutAt));
      await proxy.restore();
      phase = 'after';
      const outageMs = Date.now() - cutAt;

      // Recovered on their own: nothing restarted, an upload goes through again.
      const restoredAt = Date.now();
      const recovery = await uploadUntilAccepted([frontend], 0, await bytesOf(next++));
      accepted.push({ index: next - 1, id: recovery.id, sent: 'after', answered: 'after' });
      const recoveredMs = Date.now() - restoredAt;
      await sleep(2_000);
      uploading = false;
      await uploaders;

      report(
        `PostgreSQL cut off for ${outageMs} ms; an upload was accepted again ${recoveredMs} ms after, ${recovery.refusals.length} tries refused before`,
      );
      report(`during the outage: ${JSON.stringify(probes)}`);
      const acceptedBy = countOf(accepted.map((upload) => `sent ${upload.sent}, answered ${upload.answered}`));
      report(
        `uploads accepted: ${JSON.stringify(acceptedBy)}; refused: ${JSON.stringify(countOf(refused.map((r) => `sent ${r.sent}: ${r.refusal}`)))}`,
      );

      const unavailable = { status: 503, code: 'unavailable' };
      expect(probes).toEqual({
        'frontend upload': unavailable,
        'frontend isReady': unavailable,
        'taskdb get': unavailable,
        'kv get': unavailable,
      });
      // A refused upload was refused as unavailable, never with another error nor a cut connection.
      for (const { refusal } of [...refused, ...recovery.refusals]) expect(refusal).toBe('503 unavailable');
      expect(Object.values(stack.processes).filter((proc) => proc.exited())).toEqual([]);
    } finally {
      uploading = false;
      await proxy.restore();
      await uploaders;
    }

    const ended = await waitUntilEnded(
      [frontend],
      accepted.map((upload) => upload.id),
      120_000,
    );
    expect(countOf(accepted.map((upload) => ended.get(upload.id)?.state ?? 'unknown'))).toEqual({ finished: accepted.length });
    const problems: string[] = [];
    for (const { index, id } of accepted) {
      const problem = await resultProblem(frontend, id, picture(index));
      if (problem) problems.push(`image ${index} (${id}): ${problem}`);
    }
    expect(problems).toEqual([]);
  }, 240_000);
});
