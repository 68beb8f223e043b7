import { performance } from 'node:perf_hooks';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { ImageCodec } from '../domain/image-codec';
import { transformImage } from '../domain/image-transformer';
import { asBuffer, toThreadError, transferable, type ThreadData, type ThreadMessage, type TransformRequest } from './transform-protocol';

// The entry point of a transform thread: decode → operation → encode, one request at a time
// (the pool sends the next only after the answer). Loaded as dist/threads/transform-thread.js.

if (!parentPort) throw new Error('transform-thread runs as a worker thread of the transform pool');
const port = parentPort;
const codec = new ImageCodec((workerData as ThreadData).codec);

async function transform(request: TransformRequest): Promise<void> {
  const { id, contentType, op, params } = request;
  const marks = [performance.now()];
  try {
    const bytes = await transformImage(
      codec,
      asBuffer(request.source),
      contentType,
      op,
      (next) => {
        marks.push(performance.now());
        if (next === 'encode') port.postMessage({ id, type: 'encoding' } satisfies ThreadMessage);
      },
      params,
    );
    const [started, decoded, transformed] = marks as [number, number, number];
    const encoded = performance.now();
    const timings = { threadId, decodeMs: decoded - started, operationMs: transformed - decoded, encodeMs: encoded - transformed };
    const { view, transfer } = transferable(bytes);
    port.postMessage({ id, type: 'done', bytes: view, timings } satisfies ThreadMessage, transfer);
  } catch (err) {
    port.postMessage({ id, type: 'failed', error: toThreadError(err) } satisfies ThreadMessage);
  }
}

port.on('message', (request: TransformRequest) => {
  void transform(request);
});
