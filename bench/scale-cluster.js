// The 512×512 pipeline through the cluster (scripts/cluster.js: several instances of every
// service on PostgreSQL and S3), for the record: two cores cannot show a scale-out gain.
// It runs when the build has the cluster launcher's programmatic API, `startCluster(options)`;
// until then, `clusterLauncher()` says why not and the part is skipped.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { PixelmillClient } = require('./pixelmill-client');
const { photoPngs } = require('./test-images');
const { untilDone } = require('./scale-services');

const ROOT = path.resolve(__dirname, '..');
const LAUNCHER = path.join(ROOT, 'scripts', 'cluster.js');

/** `{ start }` when scripts/cluster.js exports `startCluster`, else `{ reason }`. */
function clusterLauncher() {
  if (!fs.existsSync(LAUNCHER)) return { reason: 'scripts/cluster.js is not in this build' };
  const { startCluster } = require(LAUNCHER);
  if (typeof startCluster !== 'function') return { reason: 'scripts/cluster.js exports no startCluster(options)' };
  return { start: startCluster };
}

/** The frontends' base URLs, from what startCluster() answers. */
function frontendUrls(cluster) {
  if (!Array.isArray(cluster.frontends) || cluster.frontends.length === 0) {
    throw new Error(`startCluster() answered without the frontends' URLs: adapt frontendUrls() in ${__filename}`);
  }
  return cluster.frontends;
}

/** Uploads `count` images over all frontends in turn, `clients` at a time, each waiting for its result. */
async function pipeline(clients, images, count, concurrency) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const client = clients[i % clients.length];
        const id = await client.upload(images[i % images.length]);
        const status = await client.waitUntilDone(id);
        if (status.state !== 'finished') throw new Error(`image ${id} ${status.state}: ${status.error ?? ''}`);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** Part 5: images per second of 512×512 PNGs through the whole cluster, on a PostgreSQL schema of its own. */
async function clusterPipeline(start, plan, { workDir, logDir, log }) {
  const { createTestSchema } = require('@pixelmill/kit/testing');
  const schema = await createTestSchema('scale_cluster');
  const done = untilDone(() => schema.drop());
  let cluster;
  let stopped;
  try {
    cluster = await start({
      dataDir: path.join(workDir, 'cluster'),
      logDir,
      freePorts: true,
      env: { LOG_LEVEL: 'warn', DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema },
      envFor: { frontend: { UPLOAD_RATE_PER_MINUTE: '0' } },
    });
    stopped = untilDone(() => cluster.stop());
    const clients = frontendUrls(cluster).map((url) => new PixelmillClient(url));
    for (const client of clients) await client.detectLongPoll();
    const images = photoPngs(512, 512, 4, 1);
    log(`cluster up with ${clients.length} frontend(s); warming up`);
    await pipeline(clients, images, plan.cluster.warmup, plan.cluster.clients);
    const seconds = await pipeline(clients, images, plan.cluster.images, plan.cluster.clients);
    return {
      frontends: clients.length,
      images: plan.cluster.images,
      clients: plan.cluster.clients,
      imagesPerSecond: plan.cluster.images / seconds,
    };
  } finally {
    await cluster?.stop();
    stopped?.();
    await schema.drop().finally(done);
  }
}

module.exports = { clusterLauncher, clusterPipeline };
