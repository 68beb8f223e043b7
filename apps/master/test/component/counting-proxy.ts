import http from 'node:http';
import express from 'express';
import { listen } from '@pixelmill/kit';

export interface CountingProxy {
  url: string;
  /** Every request that went through, as "METHOD /path?query", in order. */
  requests: string[];
  close(): Promise<void>;
}

export interface CountingProxyOptions {
  /**
   * Requests ("METHOD /path") answered 404, as a version of the service without that route
   * answers them, instead of being passed on; still recorded.
   */
  missingRoutes?: string[];
}

/**
 * An HTTP proxy in front of a real service: passes each request on unchanged and records it,
 * so a test can count the calls that really reached the service.
 */
export async function startCountingProxy(target: string, { missingRoutes = [] }: CountingProxyOptions = {}): Promise<CountingProxy> {
  const requests: string[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const app = express();
  app.use((req, res) => {
    const request = `${req.method} ${req.originalUrl}`;
    requests.push(request);
    if (missingRoutes.includes(request)) {
      req.resume();
      res.status(404).json({ error: { code: 'not_found', message: `no route ${req.method} ${req.path}` } });
      return;
    }
    const upstream = http.request(new URL(req.originalUrl, target), { method: req.method, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const server = await listen(app, 0);
  return {
    url: server.url,
    requests,
    close: async () => {
      await server.close();
      agent.destroy();
    },
  };
}
