// A launcher (`npm start`, `npm run start:cluster`) run as a child process: what it prints, and
// the processes it names.
import type { ChildProcess } from 'node:child_process';

/** Collects the child's stdout and stderr; waitFor resolves with the first match of a pattern in them. */
export function watchOutput(child: ChildProcess): {
  text(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
} {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    text: () => output,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = output.match(pattern);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`no ${pattern} in the output:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** The processes a launcher lists, one line each: `  <name>  pid <pid>  [url]`. */
export const listedProcesses = (output: string): Array<{ name: string; pid: number }> =>
  [...output.matchAll(/^\s+(\S+)\s+pid (\d+)/gm)].map(([, name, pid]) => ({ name: name!, pid: Number(pid) }));

/** Whether a process with this id is still running. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
