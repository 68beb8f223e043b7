import type express from 'express';
import { createLogger, listen, type Listening, type ListenOptions } from '../src';

export const logger = createLogger('test', 'silent');

/** Listens on a free port; every server started so is closed (and awaited) after each test. */
export function serveForEachTest(): (app: express.Express, options?: ListenOptions) => Promise<Listening> {
  const servers: Listening[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return async (app, options) => {
    const server = await listen(app, 0, options);
    servers.push(server);
    return server;
  };
}
