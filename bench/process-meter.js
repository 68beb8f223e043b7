// CPU time and memory of the stack's processes, read from /proc (Linux). Each figure covers a
// process and its descendants, in case a service runs helpers as child processes.
'use strict';
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

/** Clock ticks per second of /proc/<pid>/stat times; 100 on almost every Linux. */
function clockTicksPerSecond() {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

const readOrUndefined = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** The process and all its descendants (through /proc/<pid>/task/<tid>/children). */
function processTree(pid) {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    let tasks;
    try {
      tasks = fs.readdirSync(`/proc/${tree[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      const children = readOrUndefined(`/proc/${tree[i]}/task/${tid}/children`);
      if (children) tree.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
    }
  }
  return tree;
}

/** utime + stime of one process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function cpuTicksOf(pid) {
  const stat = readOrUndefined(`/proc/${pid}/stat`);
  if (!stat) return 0;
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A `Vm…` line of /proc/<pid>/status, in KiB. */
function statusKib(pid, field) {
  const status = readOrUndefined(`/proc/${pid}/status`);
  const match = status && new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

/** Resets the peak RSS (VmHWM) of a process to its current RSS; false where the kernel refuses. */
function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU milliseconds the whole machine has spent busy (all cores, every process), from /proc/stat. */
function machineBusyMs(msPerTick) {
  const line = readOrUndefined('/proc/stat')?.split('\n', 1)[0];
  if (!line?.startsWith('cpu ')) return 0;
  // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal || 0)) * msPerTick;
}

const sumOverTree = (pid, read) => processTree(pid).reduce((sum, p) => sum + read(p), 0);

class ProcessMeter {
  /** @param {Record<string, number>} pids  service name → pid */
  constructor(pids) {
    this.pids = pids;
    this.msPerTick = 1000 / clockTicksPerSecond();
  }

  /** CPU milliseconds (user + system) each service has used since it started. */
  cpuMs() {
    return Object.fromEntries(Object.entries(this.pids).map(([name, pid]) => [name, sumOverTree(pid, cpuTicksOf) * this.msPerTick]));
  }

  /** CPU milliseconds the whole machine has spent busy since it booted. */
  machineBusyMs() {
    return machineBusyMs(this.msPerTick);
  }

  /** Current RSS of each service, in bytes. */
  rssBytes() {
    return Object.fromEntries(
      Object.entries(this.pids).map(([name, pid]) => [name, sumOverTree(pid, (p) => statusKib(p, 'VmRSS')) * 1024]),
    );
  }

  /**
   * Starts watching the peak RSS of each service; `stop()` of the returned watch gives the peak
   * in bytes since the start. The kernel's own high-water mark (VmHWM, reset here) sees every
   * spike; where it cannot be reset, RSS is sampled every 50 ms instead.
   */
  watchPeakRss() {
    const entries = Object.entries(this.pids);
    const resettable = entries.every(([, pid]) => processTree(pid).every(resetPeakRss));
    const peaks = this.rssBytes();
    const sample = () => {
      for (const [name, bytes] of Object.entries(this.rssBytes())) peaks[name] = Math.max(peaks[name] ?? 0, bytes);
    };
    const timer = resettable ? undefined : setInterval(sample, 50);
    return {
      method: resettable ? 'VmHWM' : 'VmRSS sampled every 50 ms',
      stop: () => {
        if (timer) clearInterval(timer);
        sample();
        if (resettable) {
          for (const [name, pid] of entries) peaks[name] = Math.max(peaks[name], sumOverTree(pid, (p) => statusKib(p, 'VmHWM')) * 1024);
        }
        return peaks;
      },
    };
  }
}

module.exports = { ProcessMeter, clockTicksPerSecond };
