import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

/** A free TCP port on the host, found by binding port 0 and letting it go. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once GET <url>/healthz answers 200; rejects after timeoutMs. */
export async function waitUntilHealthy(url: string, timeoutMs = 15_000, exited?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (exited?.()) throw new Error(`the process behind ${url} exited before it was healthy`);
    if (Date.now() > deadline) throw new Error(`${url} was not healthy within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The base URL, for servers. */
  readonly url?: string;
  /** Sends a signal and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: () => boolean;
}

export interface StartProcessOptions {
  name: string;
  /** The built entry point, e.g. apps/kv/dist/main.js. */
  script: string;
  env: Record<string, string | undefined>;
  /** Working folder of the process; ours when unset. */
  cwd?: string;
  /** For servers: the port they were given, to wait until /healthz answers. */
  port?: number;
  /** Appends the process's stdout and stderr to this file; otherwise they go to ours. */
  logFile?: string;
  healthTimeoutMs?: number;
}

/** Starts one built service as its own Node.js process and, for a server, waits until it is healthy. */
export async function startServiceProcess(options: StartProcessOptions): Promise<ServiceProcess> {
  const out = options.logFile ? fs.openSync(options.logFile, 'a') : 'inherit';
  const child = spawn(process.execPath, [options.script], {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', out, out],
  });
  if (typeof out === 'number') fs.closeSync(out);
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  const proc: ServiceProcess = {
    name: options.name,
    child,
    url: options.port === undefined ? undefined : `http://127.0.0.1:${options.port}`,
    exited: () => exitCode !== undefined,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode === undefined) child.kill(signal);
      return exit;
    },
  };
  if (proc.url) {
    try {
      await waitUntilHealthy(proc.url, options.healthTimeoutMs, proc.exited);
    } catch (err) {
      await proc.stop('SIGKILL');
      throw new Error(`${options.name}: ${(err as Error).message}${options.logFile ? ` (see ${options.logFile})` : ''}`, {
        cause: err,
      });
    }
  }
  return proc;
}
