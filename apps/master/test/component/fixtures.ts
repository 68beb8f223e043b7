// What master's component tests share: taskdb and storage as processes, images, and waiting for a condition.
import path from 'node:path';
import { freePort, startServiceProcess, type ServiceProcess } from '@pixelmill/kit/testing';

export const INTERNAL_TOKEN = 'internal-token-0123456789';

/**
 * A sibling app's build in this repository, started by path: master does not depend on the other
 * apps (its pruned image must not pull them); turbo builds them before this test (apps/master/turbo.json).
 */
const mainOf = (app: string) => path.resolve(__dirname, '..', '..', '..', app, 'dist', 'main.js');

export interface DependencyOptions {
  /** Added to or overriding its settings. */
  env?: Record<string, string>;
  /** A free one when not given; the same again restarts it where it was. */
  port?: number;
}

/** The built taskdb or storage as its own process, its data and log under `dir`. */
export async function startDependency(name: 'taskdb' | 'storage', dir: string, options: DependencyOptions = {}): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  return startServiceProcess({
    name,
    script: mainOf(name),
    port,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      DATA_DIR: path.join(dir, name),
      LOG_LEVEL: 'warn',
      KV_URL: 'http://127.0.0.1:9',
      INTERNAL_TOKEN,
      RETRY_BASE_MS: '0',
      ...options.env,
    },
    logFile: path.join(dir, `${name}.log`),
  });
}

/** The signature and IHDR chunk of a PNG of width × height, then `rest`: master reads only headers. */
export const pngOf = (width: number, height: number, rest: string | Buffer = 'pixels'): Buffer => {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.writeUInt8(8, 16); // bit depth
  ihdr.writeUInt8(6, 17); // RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr, Buffer.from(rest)]);
};

/** Waits until `check` holds; fails the test rather than hang when it never does. */
export const until = async (check: () => boolean, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`still not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
