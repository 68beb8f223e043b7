import type { Readable } from 'node:stream';

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
