import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { scrapeMetrics } from '@pixelmill/kit/testing';
import { createApp, type FrontendAppDeps } from '../../src/app';

const INTERNAL_TOKEN = 'internal-token-0123456789';
const API_KEY = 'metrics-test-key-0123456789';

describe('frontend /metrics', () => {
  let frontend: Listening | undefined;

  // master is never reached here: the answers counted are the frontend's own.
  const start = async (deps: Partial<FrontendAppDeps> = {}): Promise<Listening> => {
    frontend = await listen(
      createApp({
        master: new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: 'http://127.0.0.1:9' } }).client('master'),
        logger: createLogger('frontend', 'silent'),
        maxUploadBytes: 4096,
        ...deps,
      }),
      0,
    );
    return frontend;
  };

  afterEach(async () => {
    await frontend?.close();
    frontend = undefined;
  });

  it('when the stack has an internal token, then the public door shows its metrics only to it: not to API keys, not to anyone', async () => {
    const { url } = await start({ internalToken: INTERNAL_TOKEN, apiKeys: [API_KEY] });
    expect((await scrapeMetrics(url)).status).toBe(401);
    expect((await scrapeMetrics(url, API_KEY)).status).toBe(401);
    const metrics = await scrapeMetrics(url, INTERNAL_TOKEN);
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    // The security headers are on this answer too.
    expect(
      (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } })).headers.get('x-content-type-options'),
    ).toBe('nosniff');
  });

  it('when no internal token is set, then /metrics is open, as the other internal routes are', async () => {
    const { url } = await start();
    expect((await scrapeMetrics(url)).status).toBe(200);
  });

  it('when public routes are called, then they are counted by route, never by the ids in their URLs', async () => {
    const { url } = await start({ internalToken: INTERNAL_TOKEN });
    const id = 'not-a-task-id-4f1e';
    expect((await fetch(`${url}/image/isReady?id=${id}`)).status).toBe(400);
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/no/such/${id}`)).status).toBe(404);
    const metrics = await scrapeMetrics(url, INTERNAL_TOKEN);
    expect(metrics.value('http_requests_total', { method: 'GET', route: '/image/isReady', status: '400' })).toBe(1);
    expect(metrics.value('http_requests_total', { method: 'GET', route: '/', status: '200' })).toBe(1);
    expect(metrics.value('http_requests_total', { method: 'GET', route: '(unmatched)', status: '404' })).toBe(1);
    expect(metrics.text).not.toContain(id);
  });
});
