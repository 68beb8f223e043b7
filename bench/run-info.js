// What a benchmark run tells about itself: the machine and the build (the git state) its figures
// were measured on, and the services' logs when a measurement failed.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');

const loadAverage = () => os.loadavg().map((l) => Number(l.toFixed(2)));

function describeMachine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    cpuModel: model,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: loadAverage(),
  };
}

/** The commit and the files modified in the work tree: the figures are those of this build. */
function describeSource() {
  const git = (...args) => {
    const result = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : undefined;
  };
  const commit = git('rev-parse', 'HEAD');
  if (!commit) return undefined;
  const status = git('status', '--porcelain') ?? '';
  return { commit, modified: status.split('\n').filter(Boolean) };
}

/** The last lines of each service's log, to explain a failure before the folder is removed. */
function logTails(logDir, lines = 15) {
  if (!fs.existsSync(logDir)) return '';
  return fs
    .readdirSync(logDir)
    .map((file) => {
      const text = fs.readFileSync(path.join(logDir, file), 'utf8').trimEnd();
      return text ? `--- ${file} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}` : '';
    })
    .filter(Boolean)
    .join('\n');
}

module.exports = { loadAverage, describeMachine, describeSource, logTails };
