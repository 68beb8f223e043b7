import type { Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { AppError } from './errors';
import { tooLarge } from './raw-body';

/** Whether a stream's source has given its last byte (Node keeps this only in its internal state). */
const endOfDataReached = (stream: Readable): boolean =>
  (stream as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;

/**
 * The first `bytes` of a stream (fewer if it ends sooner), put back so that the stream still
 * yields everything from the start, its end included.
 */
export async function peekStream(stream: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < bytes && !stream.readableEnded) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    // All its data was read: 'end' is on its way, and the head put back below keeps it from
    // being emitted. Waiting for it would lose the head: a stream cannot take bytes back after it.
    if (endOfDataReached(stream)) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off('readable', done);
        stream.off('end', done);
        stream.off('error', reject);
        resolve();
      };
      stream.once('readable', done).once('end', done).once('error', reject);
    });
  }
  const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  if (head.length > 0) stream.unshift(head);
  return head;
}

/**
 * Passes bytes on as they come, counting them and feeding each to `hash` (when given), so a
 * stream's size and digest are known once it has gone through, without holding it. Past `limit`
 * bytes it fails with `tooLarge()`.
 */
export class MeteredStream extends Transform {
  /** The bytes passed so far. */
  bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly tooLarge: () => Error,
    private readonly hash?: Hash,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      callback(this.tooLarge());
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }
}

/**
 * `source` piped through a MeteredStream of at most `limit` bytes (see there). A source that
 * breaks off before its end fails the metered stream (400), so whoever reads it stops too. Not
 * `pipeline`: a refusal would destroy the source, a request say, and the socket its answer goes on.
 */
export function metered(source: Readable, limit: number, hash?: Hash): MeteredStream {
  const stream = new MeteredStream(limit, () => tooLarge(limit), hash);
  source.pipe(stream);
  source.once('close', () => {
    if (!source.readableEnded) stream.destroy(new AppError('bad_request', 400, 'the upload was cut off before its end'));
  });
  return stream;
}
