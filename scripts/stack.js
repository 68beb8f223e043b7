// Starts the six built pixelmill services as separate processes, in dependency order, and
// finds them the way they find each other: through kv. Used by `npm start`, `npm run
// start:cluster` (several instances of a service, on PostgreSQL and S3), the end-to-end tests
// and the benchmark.
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const { freePort, startServiceProcess, waitUntilHealthy } = require('@pixelmill/kit/testing');

const ROOT = path.resolve(__dirname, '..');

/** The servers in start order, with their default ports; the worker comes last. */
const SERVERS = [
  { name: 'kv', port: 3000, data: true },
  { name: 'taskdb', port: 3001, data: true },
  { name: 'storage', port: 3002, data: true },
  { name: 'master', port: 3003, data: false },
  { name: 'frontend', port: 8080, data: false },
];

const scriptOf = (name) => path.join(ROOT, 'apps', name, 'dist', 'main.js');

/**
 * Waits until kv lists this instance of a service (its key `services/<service>/<INSTANCE_ID>`, or
 * its address under `services/<service>/`), so dependents can resolve it at once.
 */
async function waitUntilRegistered(kvUrl, { service, env, url }, token, exited, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const prefix = `services/${service}/`;
  for (;;) {
    const response = await fetch(`${kvUrl}/keys?prefix=${encodeURIComponent(prefix)}`, { headers }).catch(() => undefined);
    const listed = response?.ok ? (await response.json()).items : (await response?.arrayBuffer(), []);
    // Checked first: another program may answer on a port this one could not take.
    if (exited()) throw new Error(`${service} at ${url} exited before it registered in kv`);
    if (listed.some((item) => item.key === `${prefix}${env.INSTANCE_ID}` || item.value === (env.ADVERTISE_URL ?? url))) return;
    if (Date.now() > deadline) throw new Error(`${service} at ${url} did not register in kv within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The process name of a service's instance (1-based): the first keeps the service's name, as in `npm start`. */
const instanceName = (service, instance) => (instance === 1 ? service : `${service}-${instance}`);

/**
 * The environment that puts the stores on shared engines: taskdb and kv (and the frontends' shared
 * upload limit) on PostgreSQL, storage's bytes in an S3 bucket, the upload limit in Redis.
 * @param {StartStackOptions} options
 * @returns {Record<string, Record<string, string>>} by service
 */
function backendEnv({ database, objectStore, redis }) {
  const db = database
    ? {
        DATABASE_URL: database.url,
        DATABASE_SCHEMA: database.schema,
        ...(database.poolSize ? { DATABASE_POOL_SIZE: String(database.poolSize) } : {}),
      }
    : {};
  return {
    kv: db,
    taskdb: db,
    frontend: { ...db, ...(redis ? { REDIS_URL: redis.url, ...(redis.prefix ? { RATE_LIMIT_PREFIX: redis.prefix } : {}) } : {}) },
    storage: objectStore
      ? {
          S3_BUCKET: objectStore.bucket,
          ...(objectStore.endpoint ? { S3_ENDPOINT: objectStore.endpoint } : {}),
          ...(objectStore.region ? { S3_REGION: objectStore.region } : {}),
          ...(objectStore.accessKeyId ? { AWS_ACCESS_KEY_ID: objectStore.accessKeyId } : {}),
          ...(objectStore.secretAccessKey ? { AWS_SECRET_ACCESS_KEY: objectStore.secretAccessKey } : {}),
        }
      : {},
  };
}

/** A fresh random token: the local stack gets new ones at every start. */
const newToken = () => crypto.randomBytes(24).toString('base64url');

/**
 * @typedef {object} StartStackOptions
 * @property {string} dataDir  folder for the services' data (one subfolder per instance: kv, taskdb, taskdb-2, ...)
 * @property {boolean} [freePorts]  pick free ports instead of the default ones
 * @property {Record<string, number>} [ports]  fixed ports of some servers' first instance (by name; 0: a free one); win over freePorts
 * @property {string} [logDir]  write each process's output to <logDir>/<name>.log instead of ours
 * @property {Record<string, string>} [env]  extra environment for every service
 * @property {Record<string, Record<string, string>>} [envFor]  extra environment per service (all its instances)
 * @property {Partial<Record<string, number>>} [instances]  how many instances of each server (default 1); further ones take free ports
 * @property {boolean} [instanceIds]  each server instance named in kv after its process (INSTANCE_ID=taskdb-2); unset: the services' default, a hash of the address
 * @property {number} [workers]  how many worker processes (default 1)
 * @property {{internal?: string, worker?: string} | false} [tokens]  the stack's tokens; each generated when absent, none with false
 * @property {{url: string, schema: string, poolSize?: number}} [database]  taskdb and kv (and the frontends' upload limit) on PostgreSQL; unset: SQLite
 * @property {{bucket: string, endpoint?: string, region?: string, accessKeyId?: string, secretAccessKey?: string}} [objectStore]  storage's bytes in an S3 bucket; unset: its folder
 * @property {{url: string, prefix?: string}} [redis]  the frontends' shared upload limit in Redis, its keys under the prefix
 */

/**
 * @typedef {object} StackServer  one running instance of a server
 * @property {string} name  its process name (`master`, `master-2`, ...)
 * @property {string} service
 * @property {number} instance  1-based
 * @property {string} url
 */

/** @param {StartStackOptions} options */
async function startStack(options) {
  const tokens =
    options.tokens === false
      ? undefined
      : { internal: options.tokens?.internal ?? newToken(), worker: options.tokens?.worker ?? newToken() };
  const tokenEnv = tokens ? { INTERNAL_TOKEN: tokens.internal, WORKER_TOKEN: tokens.worker } : {};
  const env = { PATH: process.env.PATH, LOG_LEVEL: 'info', ...options.env };
  const backends = backendEnv(options);
  if (options.logDir) fs.mkdirSync(options.logDir, { recursive: true });
  /** Known once kv has started. */
  let kvUrl;

  /**
   * @type {Record<string, {service: string, instance: number, server: boolean, env: Record<string, string | undefined>,
   *   port?: number, url?: string, started?: boolean}>}
   */
  const specs = {};
  for (const server of SERVERS) {
    for (let instance = 1; instance <= (options.instances?.[server.name] ?? 1); instance += 1) {
      const name = instanceName(server.name, instance);
      specs[name] = {
        service: server.name,
        instance,
        server: true,
        port: fixedPortOf(options, server, instance),
        env: {
          ...env,
          ...tokenEnv,
          ...(server.data ? { DATA_DIR: path.join(options.dataDir, name) } : {}),
          ...backends[server.name],
          ...options.envFor?.[server.name],
          ...(options.instanceIds ? { INSTANCE_ID: name } : {}),
        },
      };
    }
  }
  for (let instance = 1; instance <= (options.workers ?? 1); instance += 1) {
    // A worker holds only its own token: storage is reached through signed URLs.
    specs[instanceName('worker', instance)] = {
      service: 'worker',
      instance,
      server: false,
      env: { ...env, ...(tokens ? { WORKER_TOKEN: tokens.worker } : {}), ...options.envFor?.worker },
    };
  }
  const namesOf = (service) => Object.keys(specs).filter((name) => specs[name].service === service);

  /** @type {Record<string, import('@pixelmill/kit/testing').ServiceProcess>} */
  const running = {};
  const launch = async (name, spec) => {
    if (spec.server) spec.url = `http://127.0.0.1:${spec.port}`;
    running[name] = await startServiceProcess({
      name,
      script: scriptOf(spec.service),
      env: { ...spec.env, ...(spec.server ? { PORT: String(spec.port) } : {}), KV_URL: spec.service === 'kv' ? undefined : kvUrl },
      port: spec.port,
      logFile: options.logDir ? path.join(options.logDir, `${name}.log`) : undefined,
    });
    if (spec.server && spec.service !== 'kv') await waitUntilRegistered(kvUrl, spec, tokens?.internal, running[name].exited);
  };
  const start = async (name) => {
    const spec = specs[name];
    // A free port is picked as late as possible, and once more when it was taken meanwhile (the
    // process exits, or another one answers there): other programs pick free ports too. A
    // process started again keeps its port.
    const freshPort = spec.server && !spec.started && spec.port === undefined;
    for (let tries = 1; ; tries += 1) {
      if (spec.server && (spec.port === undefined || (freshPort && tries > 1))) spec.port = await freePort();
      try {
        await launch(name, spec);
        break;
      } catch (err) {
        await running[name]?.stop('SIGKILL');
        if (!freshPort || tries === 3) throw err;
      }
    }
    spec.started = true;
    if (spec.service === 'kv' && spec.instance === 1) kvUrl = spec.url;
    return running[name];
  };
  const startAll = (service) => Promise.all(namesOf(service).map(start));

  const stack = {
    dataDir: options.dataDir,
    /** Set once kv has started, as are the addresses below. */
    kvUrl: '',
    tokens,
    /** @type {Record<string, string>} the first instance's address of each server */
    urls: {},
    /** @type {StackServer[]} every server instance, in start order */
    servers: [],
    /** Every process's name, in start order. */
    names: Object.keys(specs),
    processes: running,
    /** Set once stop() is called: a supervisor restarts nothing after that. */
    stopping: false,
    /** Starts one process (again) by its name, e.g. after it died. */
    start,
    async stop() {
      stack.stopping = true;
      // Clients first, so nothing is left calling a stopped service.
      for (const service of ['worker', 'frontend', 'master', 'storage', 'taskdb', 'kv']) {
        await Promise.all(namesOf(service).map((name) => running[name]?.stop('SIGTERM')));
      }
    },
  };

  try {
    await startAll('kv');
    await Promise.all([startAll('taskdb'), startAll('storage')]);
    await startAll('master');
    await startAll('frontend');
    await startAll('worker');
    await Promise.all(namesOf('frontend').map((name) => waitUntilHealthy(specs[name].url)));
  } catch (err) {
    await stack.stop();
    throw err;
  }
  stack.kvUrl = kvUrl;
  stack.urls = Object.fromEntries(SERVERS.map((s) => [s.name, specs[s.name].url]));
  stack.servers = Object.entries(specs)
    .filter(([, spec]) => spec.server)
    .map(([name, spec]) => ({ name, service: spec.service, instance: spec.instance, url: spec.url }));
  return stack;
}

/**
 * The port of a server's instance when it is fixed: given in `ports` (0: a free one), or the default
 * one without `freePorts`. Only a first instance has one; undefined: a free port, picked at start.
 */
function fixedPortOf(options, server, instance) {
  if (instance > 1) return undefined;
  const given = options.ports?.[server.name];
  if (given !== undefined) return given === 0 ? undefined : given;
  return options.freePorts ? undefined : server.port;
}

/**
 * Restarts a process of the stack that dies (as systemd or Kubernetes would in a deployment),
 * after a pause, until the stack is stopped. `log` gets one line per exit and restart.
 */
function superviseStack(stack, log, restartDelayMs = 1_000) {
  const restartLater = (name) => {
    setTimeout(async () => {
      if (stack.stopping) return;
      try {
        const proc = await stack.start(name);
        log(`${name} restarted (pid ${proc.child.pid})`);
        supervise(name);
      } catch (err) {
        log(`could not restart ${name}: ${err.message}; trying again`);
        restartLater(name);
      }
    }, restartDelayMs);
  };
  const supervise = (name) => {
    stack.processes[name].child.once('exit', (code, signal) => {
      if (stack.stopping) return;
      log(`${name} exited (${signal ?? `code ${code}`}); restarting it in ${restartDelayMs} ms`);
      restartLater(name);
    });
  };
  Object.keys(stack.processes).forEach(supervise);
}

module.exports = { startStack, superviseStack, SERVERS };
