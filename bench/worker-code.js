// The worker's own image code, from its build: the raw limit measures exactly what the worker
// runs for a task (decode → operation → encode), with the settings it starts with.
'use strict';
const path = require('node:path');

const WORKER_DIST = path.resolve(__dirname, '..', 'apps', 'worker', 'dist');

/** The worker's configuration as it starts with no environment: its defaults. */
function workerDefaults() {
  const { WorkerConfigSchema } = require(path.join(WORKER_DIST, 'config.js'));
  return WorkerConfigSchema.parse({});
}

/** The codec options the worker derives from its configuration (see apps/worker/src/worker.ts). */
function codecOptionsOf(config) {
  return {
    pngDeflateLevel: config.PNG_DEFLATE_LEVEL,
    jpegQuality: config.JPEG_QUALITY,
    maxPixels: config.MAX_IMAGE_PIXELS,
  };
}

/** One task's image work: returns the encoded result. */
function createTransform(codecOptions) {
  const { ImageCodec } = require(path.join(WORKER_DIST, 'domain', 'image-codec.js'));
  const { transformImage } = require(path.join(WORKER_DIST, 'domain', 'image-transformer.js'));
  const codec = new ImageCodec(codecOptions);
  return (bytes, type = 'image/png', op = 'swap-red-blue') => transformImage(codec, bytes, type, op);
}

/**
 * The worker's transform threads as it starts them (createTransformPool of apps/worker/src/worker.ts,
 * with its thread heap limits): `run(bytes)` moves the bytes to a thread and resolves with the
 * encoded result. The floor's worker does its image work with them.
 */
function createThreadTransform(config) {
  const { createTransformPool } = require(path.join(WORKER_DIST, 'worker.js'));
  const pool = createTransformPool(config);
  return {
    run: async (bytes, contentType = 'image/png', op = 'swap-red-blue') => (await pool.run({ source: bytes, contentType, op })).bytes,
    close: () => pool.close(),
  };
}

module.exports = { WORKER_DIST, workerDefaults, codecOptionsOf, createTransform, createThreadTransform };
