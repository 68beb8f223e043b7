#!/usr/bin/env node
// `npm start`: runs the whole pixelmill stack on loopback with data under ./data, restarts a
// service that dies (as systemd or Kubernetes would in a deployment), and stops everything
// cleanly on Ctrl-C or SIGTERM. Settings come from ./.env and the environment (see settings.js
// and .env.example); a bad one stops it before anything starts.
//   --free-ports       free ports instead of 3000-3003 and 8080 (for those not set in the settings)
//   --dotenv <path>    another file instead of ./.env (not --env-file, which Node 20 also takes for itself after the script)
const path = require('node:path');
const { startStack, superviseStack } = require('./stack');
const { loadSchemas, planSettings, readSettings } = require('./settings');

/**
 * The settings; none (and exit code 1) when any is bad, each bad one named. `settings` holds
 * every value read (also those no service reads), for the launcher's own use.
 */
function loadSettings() {
  const schemas = loadSchemas();
  const at = process.argv.indexOf('--dotenv');
  const envFile = at === -1 ? undefined : process.argv[at + 1];
  if (at !== -1 && !envFile) throw new Error('--dotenv needs a path');
  const settings = readSettings({ envFile: envFile && path.resolve(envFile), required: at !== -1, schemas });
  const plan = planSettings(settings, schemas);
  for (const warning of plan.warnings) console.error(`pixelmill: ${warning}`);
  if (plan.problems.length > 0) {
    console.error('pixelmill: invalid configuration, nothing started:');
    for (const problem of plan.problems) console.error(`  ${problem}`);
    process.exitCode = 1;
    return undefined;
  }
  return { ...plan, settings };
}

/** Supervises the stack and stops it (then runs `after`) on Ctrl-C or SIGTERM. */
function runSupervised(stack, after = async () => undefined) {
  superviseStack(stack, (line) => console.error(`pixelmill: ${line}`));
  const stop = async (signal) => {
    if (stack.stopping) return;
    console.log(`\npixelmill: ${signal}, stopping all services`);
    await stack.stop();
    await after();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** One line per process: its name, pid and address. */
function printProcesses(stack) {
  console.log('');
  for (const name of stack.names) {
    const proc = stack.processes[name];
    console.log(`  ${name.padEnd(10)} pid ${proc.child.pid}${proc.url ? `  ${proc.url}` : ''}`);
  }
}

/** Which settings reached which services. */
function settingsLine(plan) {
  const applied = Object.entries(plan.applied).map(([name, services]) => `${name} (${services.join(', ')})`);
  return `  settings: ${applied.length > 0 ? applied.join(', ') : 'none (see .env.example)'}`;
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
  runSupervised(stack);

  printProcesses(stack);
  console.log(`pixelmill is running. Upload page: ${stack.urls.frontend}/`);
  console.log(`  try: curl -F image=@some.png ${stack.urls.frontend}/newImage`);
  console.log(`  API docs: ${stack.urls.frontend}/docs (OpenAPI: ${stack.urls.frontend}/openapi.json)`);
  console.log(`  data: ${dataDir}    stop: Ctrl-C`);
  console.log(settingsLine(plan));
  console.log('');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`pixelmill: could not start the stack: ${err.message}`);
    process.exit(1);
  });
}

module.exports = { loadSettings, runSupervised, printProcesses, settingsLine };
