// Starts the six built pixelmill services as separate processes, in dependency order, and
// finds them the way they find each other: through kv. Used by `npm start`, the end-to-end
// tests and the benchmark.
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

/** Waits until kv lists an instance of `name` (under `services/<name>/`), so dependents can resolve it at once. */
async function waitUntilRegistered(kvUrl, name, token, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const prefix = new URLSearchParams({ prefix: `services/${name}/` });
  for (;;) {
    const response = await fetch(`${kvUrl}/keys?${prefix}`, { headers }).catch(() => undefined);
    if (response?.ok && (await response.json()).items.length > 0) return;
    if (response && !response.bodyUsed) await response.arrayBuffer();
    if (Date.now() > deadline) throw new Error(`${name} did not register in kv within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A fresh random token: the local stack gets new ones at every start. */
const newToken = () => crypto.randomBytes(24).toString('base64url');

/**
 * @param {object} options
 * @param {string} options.dataDir  folder for kv, taskdb and storage data (one subfolder each)
 * @param {boolean} [options.freePorts]  pick free ports instead of the default ones
 * @param {Record<string, number>} [options.ports]  fixed ports of some servers (by name; 0: a free one); win over freePorts
 * @param {string} [options.logDir]  write each service's output to <logDir>/<name>.log instead of ours
 * @param {Record<string, string>} [options.env]  extra environment for every service
 * @param {Record<string, Record<string, string>>} [options.envFor]  extra environment per service
 * @param {number} [options.workers]  how many worker processes (default 1)
 * @param {{internal?: string, worker?: string} | false} [options.tokens]  the stack's tokens; each generated when absent, none with false
 */
async function startStack(options) {
  const tokens =
    options.tokens === false
      ? undefined
      : { internal: options.tokens?.internal ?? newToken(), worker: options.tokens?.worker ?? newToken() };
  const tokenEnv = tokens ? { INTERNAL_TOKEN: tokens.internal, WORKER_TOKEN: tokens.worker } : {};
  const env = { PATH: process.env.PATH, LOG_LEVEL: 'info', ...options.env };
  if (options.logDir) fs.mkdirSync(options.logDir, { recursive: true });
  const ports = {};
  for (const server of SERVERS) {
    const fixed = options.ports?.[server.name];
    // Port 0 asks for a free one, as it does of a service started alone.
    ports[server.name] = fixed ? fixed : options.freePorts || fixed === 0 ? await freePort() : server.port;
  }
  const kvUrl = `http://127.0.0.1:${ports.kv}`;

  /** @type {Record<string, {name: string, env: Record<string, string | undefined>, port?: number, url?: string}>} */
  const specs = {};
  for (const server of SERVERS) {
    specs[server.name] = {
      name: server.name,
      port: ports[server.name],
      url: `http://127.0.0.1:${ports[server.name]}`,
      env: {
        ...env,
        ...tokenEnv,
        PORT: String(ports[server.name]),
        KV_URL: kvUrl,
        ...(server.data ? { DATA_DIR: path.join(options.dataDir, server.name) } : {}),
        ...options.envFor?.[server.name],
      },
    };
  }
  for (let i = 0; i < (options.workers ?? 1); i += 1) {
    const name = i === 0 ? 'worker' : `worker-${i + 1}`;
    // A worker holds only its own token: storage is reached through signed URLs.
    specs[name] = { name, env: { ...env, KV_URL: kvUrl, ...(tokens ? { WORKER_TOKEN: tokens.worker } : {}), ...options.envFor?.worker } };
  }

  /** @type {Record<string, import('@pixelmill/kit/testing').ServiceProcess>} */
  const running = {};
  const start = async (name) => {
    const spec = specs[name];
    running[name] = await startServiceProcess({
      name,
      script: scriptOf(name.startsWith('worker') ? 'worker' : name),
      env: spec.env,
      port: spec.port,
      logFile: options.logDir ? path.join(options.logDir, `${name}.log`) : undefined,
    });
    if (spec.port !== undefined && name !== 'kv') await waitUntilRegistered(kvUrl, name, tokens?.internal);
    return running[name];
  };

  const stack = {
    dataDir: options.dataDir,
    kvUrl,
    tokens,
    urls: Object.fromEntries(SERVERS.map((s) => [s.name, specs[s.name].url])),
    processes: running,
    /** Starts one service (again), e.g. after it died. */
    start,
    async stop() {
      // Clients first, so nothing is left calling a stopped service.
      const order = [...Object.keys(running).filter((n) => n.startsWith('worker')), 'frontend', 'master', 'storage', 'taskdb', 'kv'];
      for (const name of order) await running[name]?.stop('SIGTERM');
    },
  };

  try {
    await start('kv');
    await Promise.all([start('taskdb'), start('storage')]);
    await start('master');
    await start('frontend');
    await Promise.all(
      Object.keys(specs)
        .filter((n) => n.startsWith('worker'))
        .map(start),
    );
    await waitUntilHealthy(stack.urls.frontend);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

module.exports = { startStack, SERVERS };
