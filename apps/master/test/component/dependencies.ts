import path from 'node:path';
import { freePort, startServiceProcess, type ServiceProcess } from '@pixelmill/kit/testing';

export const INTERNAL_TOKEN = 'internal-token-0123456789';

/**
 * A sibling app's build in this repository, started by path: master does not depend on the other
 * apps (its pruned image must not pull them); turbo builds them before this test (apps/master/turbo.json).
 */
const mainOf = (app: string) => path.resolve(__dirname, '..', '..', '..', app, 'dist', 'main.js');

/** The built taskdb or storage as its own process, its data and log under `dir`; `env` adds to or overrides its settings. */
export async function startDependency(
  name: 'taskdb' | 'storage',
  dir: string,
  env: Record<string, string> = {},
  instance: string = name,
): Promise<ServiceProcess> {
  const port = await freePort();
  return startServiceProcess({
    name,
    script: mainOf(name),
    port,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      DATA_DIR: path.join(dir, instance),
      LOG_LEVEL: 'warn',
      KV_URL: 'http://127.0.0.1:9',
      INTERNAL_TOKEN,
      RETRY_BASE_MS: '0',
      ...env,
    },
    logFile: path.join(dir, `${instance}.log`),
  });
}
