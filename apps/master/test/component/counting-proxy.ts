import http from 'node:http';
import express from 'express';
import { listen } from '@pixelmill/kit';

export interface CountingProxy {
  url: string;
  /** Every request that went through, as "METHOD /path?query", in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of a real service: passes each request on unchanged and records it,
 * so a test can count the calls that really reached the service.
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const requests: string[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const app = express();
  app.use((req, res) => {
    requests.push(`${req.method} ${req.originalUrl}`);
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
