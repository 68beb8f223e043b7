// storage at scale, through its HTTP API: PUT and GET of an image-sized object, one at a time,
// with few or many objects stored already, in the folder or in S3 (an s3rver this benchmark
// starts). The objects already there are written straight to disk (tiny ones: only their number
// matters), in the folder's layout or in s3rver's.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { request } = require('./pixelmill-client');
const { noisePng } = require('./test-images');
const { startService, timed, latency } = require('./scale-services');

/** The size measured: about a 512×512 photo-like PNG. */
const OBJECT_BYTES = 520_000;
const BUCKET = 'pixelmill-scale';
/** s3rver's fixed account. */
const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
/** Where results go: the state folder (or prefix) measured and filled. */
const STATE = 'finished';

const fillerKey = (i) => `filler_${i}`;

/** A 1×1 PNG: stored objects are images, and a filler is read only to check it is seen. */
const FILLER_BYTES = noisePng(4, 11).bytes;

/**
 * Writes `count` filler objects straight into the store's files: `<dataDir>/finished/<key>` for
 * the folder; for s3rver, `<dir>/<bucket>/finished/<key>._S3rver_object` with its MD5 and its
 * metadata (s3rver 3's file layout), as its own PUT leaves them.
 */
function seedFiller(kind, dir, count) {
  const folder = kind === 'folder' ? path.join(dir, STATE) : path.join(dir, BUCKET, STATE);
  fs.mkdirSync(folder, { recursive: true });
  const metadata = JSON.stringify({ 'content-type': 'image/png' });
  const md5 = crypto.createHash('md5').update(FILLER_BYTES).digest('hex');
  for (let i = 0; i < count; i++) {
    if (kind === 'folder') {
      fs.writeFileSync(path.join(folder, fillerKey(i)), FILLER_BYTES);
    } else {
      const file = path.join(folder, `${fillerKey(i)}._S3rver_`);
      fs.writeFileSync(`${file}object`, FILLER_BYTES);
      fs.writeFileSync(`${file}object.md5`, md5);
      fs.writeFileSync(`${file}metadata.json`, metadata);
    }
  }
}

/** An S3 server for one measurement, in this process, on a free port, with the bucket made. */
async function startS3rver(directory) {
  const S3rver = require('s3rver');
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** PUT of a new key, then GET of one put before, `samples` times after `warmup`. */
async function measurePutGet(url, { samples, warmup }, body) {
  const objectUrl = (key) => `${url}/objects/${STATE}/${key}`;
  const puts = [];
  const gets = [];
  for (let k = 0; k < warmup + samples; k++) {
    const [putMs, put] = await timed(() =>
      request(objectUrl(`measured_${k}`), { method: 'POST', headers: { 'content-type': 'image/png' }, body }),
    );
    if (put.status !== 201) throw new Error(`storage PUT: ${put.status} ${put.body.toString('utf8').slice(0, 300)}`);
    const [getMs, got] = await timed(() => request(objectUrl(`measured_${Math.floor(Math.random() * (k + 1))}`), { discardBody: true }));
    if (got.status !== 200 || got.length !== body.length) throw new Error(`storage GET: ${got.status}, ${got.length} bytes`);
    if (k >= warmup) {
      puts.push(putMs);
      gets.push(getMs);
    }
  }
  return { put: latency(puts), get: latency(gets) };
}

/**
 * Part 4: one storage process on `kind` ('folder' or 's3') with `filler` objects stored, PUT and
 * GET of OBJECT_BYTES through its API.
 */
async function storageWithObjects(kind, filler, plan, { workDir, logDir }) {
  const dir = path.join(workDir, `storage-${kind}-${filler}`);
  const dataDir = path.join(dir, 'data');
  const s3Dir = path.join(dir, 's3');
  fs.mkdirSync(dataDir, { recursive: true });
  let s3;
  let storage;
  try {
    let env = { DATA_DIR: dataDir };
    if (kind === 's3') {
      s3 = await startS3rver(s3Dir);
      env = { ...env, S3_BUCKET: BUCKET, S3_ENDPOINT: s3.url, S3_REGION: 'us-east-1', ...S3RVER_CREDENTIALS };
    }
    const [seedMs] = await timed(async () => seedFiller(kind, kind === 'folder' ? dataDir : s3Dir, filler));
    storage = await startService('storage', `storage-${kind}-${filler}`, env, logDir);
    // The filler must be what storage sees, or the figure would be of an empty store.
    for (const key of [fillerKey(0), fillerKey(filler - 1)]) {
      const seen = await request(`${storage.url}/objects/${STATE}/${key}`, { method: 'HEAD' });
      if (seen.status !== 200)
        throw new Error(`storage does not see the filler object ${key} (HEAD: ${seen.status}): update ${__filename}`);
    }
    const body = noisePng(OBJECT_BYTES, 5).bytes;
    return {
      objects: filler,
      seedSeconds: seedMs / 1000,
      objectBytes: body.length,
      ...(await measurePutGet(storage.url, plan.storage, body)),
    };
  } finally {
    await storage?.stop();
    await s3?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { storageWithObjects, OBJECT_BYTES };
