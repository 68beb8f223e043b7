// What every part of the scale benchmark shares: the built services started as processes of
// their own, and latencies timed one call at a time.
'use strict';
const path = require('node:path');
const { median, percentile } = require('./stats');

const ROOT = path.resolve(__dirname, '..');

/** What an interrupted run must still undo: processes running, schemas not dropped yet. */
const pending = new Set();

/** Registers `undo` until the returned function is called (when it was done the normal way). */
function untilDone(undo) {
  pending.add(undo);
  return () => pending.delete(undo);
}

/** Undoes everything still registered (on SIGINT or SIGTERM). */
async function undoPending() {
  await Promise.allSettled([...pending].map((undo) => undo()));
  pending.clear();
}

/**
 * Quiet, and registered nowhere: no kv runs (port 9, discard, refuses at once), and the
 * registration is retried once an hour, not every 5 s.
 */
const SERVICE_ENV = { LOG_LEVEL: 'warn', KV_URL: 'http://127.0.0.1:9', REGISTER_INTERVAL_MS: '3600000' };

/**
 * Starts `apps/<app>/dist/main.js` on a free port with `env` and little else of ours (a
 * DATABASE_URL or S3_BUCKET in our environment must not turn a SQLite or folder run into another
 * one); resolves once it answers /healthz. Its log goes to `<logDir>/<name>.log`.
 */
async function startService(app, name, env, logDir) {
  const { freePort, startServiceProcess } = require('@pixelmill/kit/testing');
  const port = await freePort();
  const service = await startServiceProcess({
    name,
    script: path.join(ROOT, 'apps', app, 'dist', 'main.js'),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...SERVICE_ENV, PORT: String(port), ...env },
    port,
    logFile: path.join(logDir, `${name}.log`),
    healthTimeoutMs: 60_000,
  });
  const done = untilDone(() => service.stop('SIGKILL'));
  return {
    ...service,
    stop: (signal) => service.stop(signal).finally(done),
  };
}

/** Resolves with [milliseconds, value] of one call. */
async function timed(call) {
  const started = performance.now();
  const value = await call();
  return [performance.now() - started, value];
}

/** Median and p99 of latencies in ms, with their count. */
const latency = (values) => ({ medianMs: median(values), p99Ms: percentile(values, 99), samples: values.length });

module.exports = { startService, timed, latency, untilDone, undoPending };
