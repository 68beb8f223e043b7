import http from 'node:http';

export interface TwoPartPost {
  /** Request headers; Content-Length is the whole body's. */
  headers: Record<string, string | number>;
  body: Buffer;
  /** Bytes sent at once; the rest only once `beforeRest` resolves (all of it by default). */
  firstPart?: number;
  beforeRest?: () => Promise<void>;
}

/**
 * POSTs a body in two parts, the second only once `beforeRest` resolves: a test proves that a
 * server passed the first part on (or answered) before the client sent it all. Resolves with the
 * status and the JSON answer. A refusal may come before the rest is sent: the rest then goes nowhere.
 */
export function postInTwoParts(url: string, { headers, body, firstPart = body.length, beforeRest }: TwoPartPost) {
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    req.write(body.subarray(0, firstPart));
    (beforeRest ?? (async () => undefined))().then(
      () => req.end(body.subarray(firstPart)),
      (err: unknown) => {
        req.destroy();
        reject(err);
      },
    );
  });
}

/** Resolves once `check` holds, polling every 10 ms; rejects naming `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
