import type { Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

/**
 * The first `bytes` of a stream (fewer if it ends sooner), put back so that the stream still
 * yields everything from the start.
 */
export async function peekStream(stream: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < bytes) {
    const chunk = stream.read() as Buffer | null;
    if (chunk === null) {
      if (stream.readableEnded) break;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          stream.off('readable', done);
          stream.off('end', done);
          stream.off('error', reject);
          resolve();
        };
        stream.once('readable', done).once('end', done).once('error', reject);
      });
      continue;
    }
    chunks.push(chunk);
    length += chunk.length;
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
