#!/usr/bin/env node
// `npm start`: runs the whole pixelmill stack on loopback with data under ./data, restarts a
// service that dies (as systemd or Kubernetes would in a deployment), and stops everything
// cleanly on Ctrl-C or SIGTERM. Settings come from ./.env and the environment (see settings.js
// and .env.example); a bad one stops it before anything starts.
//   --free-ports       free ports instead of 3000-3003 and 8080 (for those not set in the settings)
//   --dotenv <path>    another file instead of ./.env (not --env-file, which Node 20 also takes for itself after the script)
const path = require('node:path');
const { startStack } = require('./stack');
const { loadSchemas, planSettings, readSettings } = require('./settings');

const RESTART_DELAY_MS = 1_000;

/** The settings; none (and exit code 1) when any is bad, each bad one named. */
function loadSettings() {
  const schemas = loadSchemas();
  const at = process.argv.indexOf('--dotenv');
  const envFile = at === -1 ? undefined : process.argv[at + 1];
  if (at !== -1 && !envFile) throw new Error('--dotenv needs a path');
  const plan = planSettings(readSettings({ envFile: envFile && path.resolve(envFile), required: at !== -1, schemas }), schemas);
  for (const warning of plan.warnings) console.error(`pixelmill: ${warning}`);
  if (plan.problems.length > 0) {
    console.error('pixelmill: invalid configuration, nothing started:');
    for (const problem of plan.problems) console.error(`  ${problem}`);
    process.exitCode = 1;
    return undefined;
  }
  return plan;
}

async function main() {
  const plan = loadSettings();
  if (!plan) return;
  const dataDir = path.resolve(plan.dataDir ?? path.join(__dirname, '..', 'data'));
  const stack = await startStack({
    dataDir,
    freePorts: process.argv.includes('--free-ports'),
    ports: plan.ports,
    tokens: plan.tokens,
    envFor: plan.envFor,
  });
  let stopping = false;

  const restartLater = (name) => {
    setTimeout(async () => {
      if (stopping) return;
      try {
        const proc = await stack.start(name);
        console.error(`pixelmill: ${name} restarted (pid ${proc.child.pid})`);
        supervise(name);
      } catch (err) {
        console.error(`pixelmill: could not restart ${name}: ${err.message}; trying again`);
        restartLater(name);
      }
    }, RESTART_DELAY_MS);
  };
  const supervise = (name) => {
    stack.processes[name].child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`pixelmill: ${name} exited (${signal ?? `code ${code}`}); restarting it in ${RESTART_DELAY_MS} ms`);
      restartLater(name);
    });
  };
  Object.keys(stack.processes).forEach(supervise);

  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`\npixelmill: ${signal}, stopping all services`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  console.log('');
  for (const [name, proc] of Object.entries(stack.processes)) {
    console.log(`  ${name.padEnd(9)} pid ${proc.child.pid}${proc.url ? `  ${proc.url}` : ''}`);
  }
  console.log(`pixelmill is running. Upload page: ${stack.urls.frontend}/`);
  console.log(`  try: curl -F image=@some.png ${stack.urls.frontend}/newImage`);
  console.log(`  API docs: ${stack.urls.frontend}/docs (OpenAPI: ${stack.urls.frontend}/openapi.json)`);
  console.log(`  data: ${dataDir}    stop: Ctrl-C`);
  const applied = Object.entries(plan.applied).map(([name, services]) => `${name} (${services.join(', ')})`);
  console.log(`  settings: ${applied.length > 0 ? applied.join(', ') : 'none (see .env.example)'}`);
  console.log('');
}

main().catch((err) => {
  console.error(`pixelmill: could not start the stack: ${err.message}`);
  process.exit(1);
});
