// The raw limit: the worker's image code with nothing around it, in worker threads of this
// process, one per core the worker uses. The threads share a counter and take the next image
// from it until `count` are done, so a slow image does not leave a thread idle.
'use strict';
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const THREAD_SCRIPT = path.join(__dirname, 'raw-limit-thread.js');

class RawPool {
  /**
   * @param {object} options
   * @param {number} options.threads
   * @param {Record<string, Buffer[]>} options.sets  named sets of encoded images
   * @param {object} options.codecOptions  the worker's ImageCodec options
   */
  static async start({ threads, sets, codecOptions }) {
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const workers = Array.from({ length: threads }, () => new Worker(THREAD_SCRIPT, { workerData: { sets, codecOptions, counter } }));
    const pool = new RawPool(workers, counter);
    // Each thread warms up (one transform of each set) before it says it is ready.
    await Promise.all(workers.map((w) => pool.next(w, 'ready')));
    return pool;
  }

  constructor(workers, counter) {
    this.workers = workers;
    this.counter = counter;
  }

  /** The next message of a thread, of the given kind; a thread error rejects. */
  next(worker, kind) {
    return new Promise((resolve, reject) => {
      const onMessage = (message) => {
        if (message.kind !== kind) return;
        cleanup();
        resolve(message);
      };
      const onError = (err) => {
        cleanup();
        reject(err);
      };
      const onExit = (code) => {
        cleanup();
        reject(new Error(`a raw-limit thread exited with code ${code}`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Transforms `count` images of a set across the threads; resolves with the wall time in seconds. */
  async run(set, count) {
    Atomics.store(this.counter, 0, 0);
    const started = process.hrtime.bigint();
    const done = this.workers.map((w) => this.next(w, 'done'));
    for (const w of this.workers) w.postMessage({ kind: 'run', set, count });
    const answers = await Promise.all(done);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const processed = answers.reduce((sum, a) => sum + a.processed, 0);
    if (processed !== count) throw new Error(`raw limit: ${processed} images transformed, expected ${count}`);
    return seconds;
  }

  async close() {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Milliseconds of one transform of each run, on this thread, after one unmeasured warm-up. */
async function singleImageTimes(transform, images, runs) {
  await transform(images[0]);
  const times = [];
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint();
    await transform(images[run % images.length]);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return times;
}

module.exports = { RawPool, singleImageTimes };
