// A test client of one or more frontends: uploads that are retried until accepted, waits for the
// tasks to end, and the check of each result's pixels. Used by the tests that disturb a running
// stack (services killed, the database cut off).
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { AcceptedSchema, ErrorBodySchema, TaskStatusSchema, type TaskState } from '@pixelmill/contracts';
import { compare, decode, type Bitmap } from './images';

/** A pause; rejects at once when the signal aborts. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(Math.max(0, ms), undefined, { signal });

/**
 * A distinct small picture per index, with transparency, so every result can be checked on its
 * own; of varied size (16 to 79 pixels a side) unless a size is given.
 */
export function picture(index: number, size?: { width: number; height: number }): Bitmap {
  const { width, height } = size ?? { width: 16 + ((index * 7) % 64), height: 16 + ((index * 13) % 64) };
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 4;
      data[i] = (x * 3 + index * 5) % 256;
      data[i + 1] = (y * 4 + index * 11) % 256;
      data[i + 2] = (x + y + index * 17) % 256;
      data[i + 3] = 128 + ((x + index) % 128);
    }
  }
  return { data, width, height };
}

/** The classic operation: red and blue swapped, green and alpha kept. */
export const swapRedBlue = (r: number, g: number, b: number, a: number): [number, number, number, number] => [b, g, r, a];

/** Why one try of an upload was not accepted: a status (with the error code), or what the connection did. */
export type Refusal = `${number} ${string}` | 'connection lost or refused' | 'timed out';

export interface Upload {
  id: string;
  /** The frontend that accepted it. */
  via: string;
  /** The tries before it was accepted, each with the frontend that refused it. */
  refusals: Array<{ frontend: string; refusal: Refusal }>;
}

/** One upload of a PNG, raw, with an idempotency key: the task's id when accepted (202), else why not. */
export async function uploadOnce(frontend: string, bytes: Buffer, key: string): Promise<{ id: string } | { refusal: Refusal }> {
  try {
    const response = await fetch(`${frontend}/newImage`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/png', 'idempotency-key': key, accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    if (response.status === 202) return { id: AcceptedSchema.parse(JSON.parse(text)).id };
    // Every refusal is the contract's JSON error body.
    const code = ErrorBodySchema.parse(JSON.parse(text)).error.code;
    return { refusal: `${response.status} ${code}` };
  } catch (err) {
    // Not `instanceof Error`: fetch's errors come from another realm than jest's globals.
    const { name, message, cause } = err as { name?: string; message?: string; cause?: unknown };
    if (/timeout|abort/i.test(`${name} ${message}`)) return { refusal: 'timed out' };
    if (/fetch failed|socket|ECONN|terminated/i.test(`${message} ${String(cause)}`)) return { refusal: 'connection lost or refused' };
    throw err;
  }
}

/**
 * Uploads until accepted, with one idempotency key, so a try whose answer was lost cannot make a
 * second task. A try refused by a server error, or whose connection was refused or cut (its
 * frontend down), is repeated on the next frontend of the list; a client error (4xx) fails the test.
 */
export async function uploadUntilAccepted(
  frontends: string[],
  first: number,
  bytes: Buffer,
  options: { maxTries?: number; signal?: AbortSignal } = {},
): Promise<Upload> {
  const key = randomUUID();
  const refusals: Upload['refusals'] = [];
  const maxTries = options.maxTries ?? 200;
  for (let tries = 0; tries < maxTries; tries += 1) {
    const frontend = frontends[(first + tries) % frontends.length]!;
    const answer = await uploadOnce(frontend, bytes, key);
    if ('id' in answer) return { id: answer.id, via: frontend, refusals };
    if (/^4/.test(answer.refusal)) throw new Error(`an upload to ${frontend} was refused with ${answer.refusal}`);
    refusals.push({ frontend, refusal: answer.refusal });
    await sleep(Math.min(1_000, 100 * (tries + 1)), options.signal);
  }
  throw new Error(`an upload was never accepted in ${maxTries} tries: ${JSON.stringify(refusals.slice(-3))}`);
}

export interface Ended {
  state: TaskState;
  error?: string;
}

/**
 * Waits until every task has ended (finished or failed), asking the frontends in turn; the
 * states then, and those still open at the deadline.
 */
export async function waitUntilEnded(frontends: string[], ids: Iterable<string>, timeoutMs: number): Promise<Map<string, Ended>> {
  const states = new Map<string, Ended>();
  let open = [...ids];
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; open.length > 0; round += 1) {
    const still: string[] = [];
    // A few at a time: the frontends share the machine with everything else.
    for (let at = 0; at < open.length; at += 16) {
      await Promise.all(
        open.slice(at, at + 16).map(async (id, index) => {
          const frontend = frontends[(round + index) % frontends.length]!;
          const response = await fetch(`${frontend}/image/isReady?id=${id}`, { signal: AbortSignal.timeout(15_000) }).catch(
            () => undefined,
          );
          const body: unknown = await response?.json().catch(() => undefined);
          const status = response?.status === 200 ? TaskStatusSchema.parse(body) : undefined;
          if (status) states.set(id, { state: status.state, ...(status.error ? { error: status.error } : {}) });
          if (status?.state !== 'finished' && status?.state !== 'failed') still.push(id);
        }),
      );
    }
    open = still;
    if (open.length === 0 || Date.now() > deadline) break;
    await sleep(500);
  }
  return states;
}

/**
 * Downloads a task's result through a frontend and compares its pixels with the picture it was
 * made from, red and blue swapped: undefined when exact, else what differs.
 */
export async function resultProblem(frontend: string, id: string, source: Bitmap): Promise<string | undefined> {
  const response = await fetch(`${frontend}/image/get?id=${id}`, { signal: AbortSignal.timeout(30_000) });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return `GET /image/get answered ${response.status}: ${bytes.toString().slice(0, 200)}`;
  try {
    const diff = compare(source, decode('image/png', bytes), swapRedBlue);
    return diff.maxDiff === 0 && diff.alphaChanged === 0 ? undefined : `pixels differ: ${JSON.stringify(diff)}`;
  } catch (err) {
    return `the result does not decode as the expected PNG: ${(err as Error).message}`;
  }
}

/** How often each value occurs. */
export function countOf(values: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
