// One thread of the raw-limit pool (see raw-limit.js): the worker's transform, nothing else.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createTransform } = require('./worker-code');

const { codecOptions, counter } = workerData;
// Buffers arrive as plain Uint8Arrays; the codec wants Buffers (views, no copy).
const sets = Object.fromEntries(
  Object.entries(workerData.sets).map(([name, images]) => [name, images.map((u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength))]),
);
const transform = createTransform(codecOptions);

async function warmUp() {
  for (const images of Object.values(sets)) await transform(images[0]);
  parentPort.postMessage({ kind: 'ready' });
}

parentPort.on('message', async ({ kind, set, count }) => {
  if (kind !== 'run') return;
  const images = sets[set];
  let processed = 0;
  for (;;) {
    const index = Atomics.add(counter, 0, 1);
    if (index >= count) break;
    await transform(images[index % images.length]);
    processed += 1;
  }
  parentPort.postMessage({ kind: 'done', processed });
});

warmUp().catch((err) => {
  throw err;
});
