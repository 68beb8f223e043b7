import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, listen, type Listening } from '@pixelmill/kit';
import { scrapeMetrics } from '@pixelmill/kit/testing';
import { createApp } from '../../src/app';
import type { KvRepository } from '../../src/data-access/kv-repository';
import { SqliteKvRepository } from '../../src/data-access/sqlite-kv-repository';

const TOKEN = 'internal-token-0123456789';

describe('kv /metrics', () => {
  let dir: string;
  let repository: KvRepository;
  let server: Listening;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-kv-'));
    repository = new SqliteKvRepository(path.join(dir, 'kv.sqlite'));
    server = await listen(createApp({ repository, logger: createLogger('kv', 'silent'), tokens: { internal: TOKEN } }), 0);
  });

  afterEach(async () => {
    await server.close();
    await repository.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when asked without the internal token, then it is a 401; with it, the reads are counted by key pattern, not by key', async () => {
    expect((await scrapeMetrics(server.url)).status).toBe(401);
    const key = 'services/storage/instance-7f3a';
    expect((await fetch(`${server.url}/keys/${encodeURIComponent(key)}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
      404,
    );
    const metrics = await scrapeMetrics(server.url, TOKEN);
    expect(metrics.status).toBe(200);
    expect(metrics.value('http_requests_total', { method: 'GET', route: '/keys/:key', status: '404' })).toBe(1);
    expect(metrics.text).not.toContain('instance-7f3a');
  });
});
