#!/usr/bin/env node
// `npm run start:cluster`: pixelmill scaled out on one machine. taskdb and kv on PostgreSQL,
// storage's bytes in an S3 bucket, the frontends' upload limit shared, and several instances of
// every service as separate processes on loopback (free ports): 1 kv, 2 taskdbs, 2 storages,
// 2 masters, 2 frontends and 3 workers. Supervised as `npm start` is; Ctrl-C or SIGTERM stops all.
//
// Settings as for `npm start` (./.env and the environment, see .env.example), and:
//   DATABASE_URL     PostgreSQL; default postgres://postgres@127.0.0.1:5432/postgres
//   DATABASE_SCHEMA  its schema; default pixelmill_cluster (apart from a single stack's `pixelmill`)
//   S3_ENDPOINT      an S3-compatible server (with S3_BUCKET, S3_REGION, AWS_ACCESS_KEY_ID,
//                    AWS_SECRET_ACCESS_KEY); unset: a local S3 server (s3rver) started here,
//                    its data under <data>/cluster/s3, bucket S3_BUCKET (default pixelmill)
//   REDIS_URL        Redis for the shared upload limit; unset: the frontends share it in PostgreSQL
// Port settings (FRONTEND_PORT, ...) are ignored: two instances cannot share one. A worker
// METRICS_PORT becomes 0: each worker takes a free one.
//   --dotenv <path>  another file instead of ./.env
const path = require('node:path');
const fs = require('node:fs');
const { Client } = require('pg');
const { startStack } = require('./stack');
const { loadSettings, runSupervised, printProcesses, settingsLine } = require('./start');

/** How many instances of each server the cluster runs, and of the worker. */
const INSTANCES = { kv: 1, taskdb: 2, storage: 2, master: 2, frontend: 2 };
const WORKERS = 3;

/** The variables the cluster reads itself, and their defaults. */
const CLUSTER_DEFAULTS = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
  DATABASE_SCHEMA: 'pixelmill_cluster',
  // Per instance: 5 services on one PostgreSQL would otherwise open up to 50 connections of its 100.
  DATABASE_POOL_SIZE: '4',
  S3_ENDPOINT: undefined,
  S3_BUCKET: 'pixelmill',
  S3_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  REDIS_URL: undefined,
};
/** The key pair s3rver accepts (its signatures are checked). */
const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * A local S3 server (s3rver) on a free loopback port, its objects under `directory`, the bucket
 * created.
 * @returns {Promise<{bucket: string, endpoint: string, region: string, accessKeyId: string, secretAccessKey: string, close(): Promise<void>}>}
 */
async function startLocalS3({ directory, bucket, region = 'us-east-1' }) {
  // A dev dependency: only the launcher and the tests start it.
  const S3rver = require('s3rver');
  fs.mkdirSync(directory, { recursive: true });
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  return { bucket, endpoint: `http://127.0.0.1:${port}`, region, ...LOCAL_S3_CREDENTIALS, close: () => server.close() };
}

/**
 * Starts the cluster: a local S3 server unless `objectStore` names one, then the services.
 * @param {object} options
 * @param {string} options.dataDir  the instances' folders, and the local S3 server's (`s3`)
 * @param {{url: string, schema: string, poolSize?: number}} [options.database]  PostgreSQL for taskdb, kv and the frontends (else DATABASE_URL in `env` decides)
 * @param {{bucket: string, endpoint?: string, region?: string, accessKeyId?: string, secretAccessKey?: string}} [options.objectStore]  an S3 server of one's own; unset: a local one
 * @param {string} [options.bucket]  the local S3 server's bucket (default pixelmill)
 * @param {{url: string, prefix?: string}} [options.redis]  for the shared upload limit; unset: PostgreSQL holds it
 * @param {string} [options.logDir]  each process's output in <logDir>/<name>.log
 * @param {Record<string, string>} [options.env]
 * @param {Record<string, Record<string, string>>} [options.envFor]
 * @param {{internal?: string, worker?: string} | false} [options.tokens]
 * @param {Partial<Record<string, number>>} [options.instances]  overrides of INSTANCES
 * @param {number} [options.workers]  default WORKERS
 */
async function startCluster(options) {
  const localS3 = options.objectStore
    ? undefined
    : await startLocalS3({ directory: path.join(options.dataDir, 's3'), bucket: options.bucket ?? CLUSTER_DEFAULTS.S3_BUCKET });
  try {
    const stack = await startStack({
      dataDir: options.dataDir,
      logDir: options.logDir,
      freePorts: true,
      env: options.env,
      envFor: options.envFor,
      tokens: options.tokens,
      instances: { ...INSTANCES, ...options.instances },
      instanceIds: true,
      workers: options.workers ?? WORKERS,
      database: options.database,
      objectStore: options.objectStore ?? localS3,
      redis: options.redis,
    });
    const stopServices = stack.stop;
    return Object.assign(stack, {
      /** The frontends' addresses: the upload pages. */
      frontends: stack.servers.filter((server) => server.service === 'frontend').map((server) => server.url),
      /** Where storage keeps the bytes. */
      objectStore: options.objectStore ?? localS3,
      async stop() {
        await stopServices();
        await localS3?.close();
      },
    });
  } catch (err) {
    await localS3?.close();
    throw err;
  }
}

/** The URL without its password, for the output. */
const withoutPassword = (url) => {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
};

/** Fails before anything starts when PostgreSQL cannot be reached. */
async function checkDatabase(url) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(`cannot reach PostgreSQL at ${withoutPassword(url)} (${err.message}): set DATABASE_URL in .env or the environment`, {
      cause: err,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function main() {
  const plan = loadSettings();
  if (!plan) return;
  const setting = (name) => {
    // The services may not read a cluster variable yet; the launcher does, from the environment too.
    const value = process.env[name] ?? plan.settings[name]?.value;
    return value === undefined || value === '' ? CLUSTER_DEFAULTS[name] : value;
  };
  if (Object.keys(plan.ports).length > 0) {
    console.error(`pixelmill: the cluster picks free ports; ignored: ${Object.keys(plan.ports).join(', ')}'s port`);
  }
  const dataDir = path.resolve(plan.dataDir ?? path.join(__dirname, '..', 'data'), 'cluster');
  const database = { url: setting('DATABASE_URL'), schema: setting('DATABASE_SCHEMA'), poolSize: Number(setting('DATABASE_POOL_SIZE')) };
  await checkDatabase(database.url);
  const endpoint = setting('S3_ENDPOINT');
  const objectStore = endpoint
    ? {
        bucket: setting('S3_BUCKET'),
        endpoint,
        region: setting('S3_REGION'),
        accessKeyId: setting('AWS_ACCESS_KEY_ID'),
        secretAccessKey: setting('AWS_SECRET_ACCESS_KEY'),
      }
    : undefined;
  const envFor = { ...plan.envFor };
  if (!objectStore) {
    // The local S3 server's endpoint and key pair, not the ones of a user's AWS account.
    const replaced = ['S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
    envFor.storage = Object.fromEntries(Object.entries(plan.envFor.storage ?? {}).filter(([key]) => !replaced.includes(key)));
  }
  const metricsPort = envFor.worker?.METRICS_PORT;
  if (metricsPort !== undefined && metricsPort !== '' && metricsPort !== '0') {
    // The workers cannot share one port: each takes a free one, which its start-up log line names.
    console.error(`pixelmill: the cluster's ${WORKERS} workers cannot share METRICS_PORT ${metricsPort}: each takes a free one`);
    envFor.worker = { ...envFor.worker, METRICS_PORT: '0' };
  }
  const redisUrl = setting('REDIS_URL');

  const cluster = await startCluster({
    dataDir,
    logDir: path.join(dataDir, 'logs'),
    database,
    objectStore,
    bucket: setting('S3_BUCKET'),
    redis: redisUrl ? { url: redisUrl } : undefined,
    tokens: plan.tokens,
    envFor,
  });
  // stack.stop() stops the local S3 server too.
  runSupervised(cluster);

  printProcesses(cluster);
  const [first] = cluster.frontends;
  console.log('pixelmill cluster is running. Upload pages:');
  for (const frontend of cluster.frontends) console.log(`  Upload page: ${frontend}/`);
  console.log(`  try: curl -F image=@some.png ${first}/newImage`);
  console.log(`  API docs: ${first}/docs (OpenAPI: ${first}/openapi.json)`);
  console.log(`  PostgreSQL: ${withoutPassword(database.url)} schema ${database.schema}`);
  console.log(`  S3: ${cluster.objectStore.endpoint ?? 'AWS'} bucket ${cluster.objectStore.bucket}${objectStore ? '' : ' (local s3rver)'}`);
  console.log(`  upload limit shared in: ${redisUrl ? withoutPassword(redisUrl) : 'PostgreSQL'}`);
  console.log(`  logs: ${path.join(dataDir, 'logs')}    stop: Ctrl-C`);
  console.log(settingsLine(plan));
  console.log('');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`pixelmill: could not start the cluster: ${err.message}`);
    process.exit(1);
  });
}

module.exports = { startCluster, startLocalS3, INSTANCES, WORKERS, CLUSTER_DEFAULTS };
