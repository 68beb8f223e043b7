import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, listen, type Listening } from '@pixelmill/kit';
import { scrapeMetrics } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import { FileStore } from '../../src/data-access/file-store';

const TOKEN = 'internal-token-0123456789';

describe('storage /metrics', () => {
  let dir: string;
  let server: Listening;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-storage-'));
    const app = createApp({
      store: new FileStore(dir),
      logger: createLogger('storage', 'silent'),
      maxObjectBytes: 4096,
      tokens: { internal: TOKEN },
    });
    server = await listen(app, 0);
  });

  afterEach(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when asked without the internal token, then it is a 401; with it, the reads are counted by object pattern, not by key', async () => {
    expect((await scrapeMetrics(server.url)).status).toBe(401);
    const key = 'c0ffee00-1111-4222-8333-444455556666';
    expect((await fetch(`${server.url}/objects/inProgress/${key}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
    const metrics = await scrapeMetrics(server.url, TOKEN);
    expect(metrics.status).toBe(200);
    expect(metrics.value('http_requests_total', { method: 'GET', route: '/objects/:state/:key', status: '404' })).toBe(1);
    expect(metrics.text).not.toContain(key);
  });
});
