#!/usr/bin/env node
// `npm start`: runs the whole pixelmill stack on loopback with data under ./data, restarts a
// service that dies (as systemd or Kubernetes would in a deployment), and stops everything
// cleanly on Ctrl-C or SIGTERM. `--free-ports` picks free ports instead of 3000-3003 and 8080.
const path = require('node:path');
const { startStack } = require('./stack');

const RESTART_DELAY_MS = 1_000;

async function main() {
  const dataDir = path.resolve(process.env.PIXELMILL_DATA_DIR ?? path.join(__dirname, '..', 'data'));
  const stack = await startStack({
    dataDir,
    freePorts: process.argv.includes('--free-ports'),
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
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
  console.log(`  data: ${dataDir}    stop: Ctrl-C`);
  console.log('');
}

main().catch((err) => {
  console.error(`pixelmill: could not start the stack: ${err.message}`);
  process.exit(1);
});
