import { documentedRoutes, mountedRoutes } from '@pixelmill/contracts/testing';
import { shippedOpenApiDocument } from '@pixelmill/kit/testing';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { InProcessRateLimiter } from '../../src/domain/rate-limiter';

const shipped = shippedOpenApiDocument('frontend');

describe('frontend OpenAPI document and docs page', () => {
  let frontend: Listening;

  // master is never called for these: the document and the page are the frontend's own.
  const app = () =>
    createApp({
      master: new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: 'http://127.0.0.1:9' } }).client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: 4096,
      apiKeys: ['docs-test-key-0123456789'],
      uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1 }),
    });

  beforeEach(async () => {
    frontend = await listen(app(), 0);
  });

  afterEach(async () => {
    await frontend.close();
  });

  it('when the app is built, then every route it mounts is documented, and every documented route is mounted', () => {
    expect(mountedRoutes(app())).toEqual(documentedRoutes(shipped));
  });

  it('when API keys are on, then /openapi.json and /docs still answer without one, with the security headers', async () => {
    const document = await fetch(`${frontend.url}/openapi.json`);
    expect(document.status).toBe(200);
    expect(await document.json()).toEqual(shipped);
    const page = await fetch(`${frontend.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('when the docs page is read, then everything it loads comes from this server, and is there', async () => {
    const html = await (await fetch(`${frontend.url}/docs`)).text();
    expect(html).not.toMatch(/(?:https?:)?\/\/[a-z0-9.-]+/i);
    const loaded = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(loaded).toEqual(expect.arrayContaining(['/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js', '/docs.js']));
    for (const url of loaded) {
      const response = await fetch(`${frontend.url}${url}`);
      expect({ url, status: response.status }).toEqual({ url, status: 200 });
    }
  });

  it('when the upload page is read, then it links to the docs page', async () => {
    expect(await (await fetch(`${frontend.url}/`)).text()).toContain('<a href="/docs">API documentation</a>');
  });

  it('when another file of swagger-ui-dist is asked for, then it is not served (its demo page loads the Petstore)', async () => {
    for (const file of ['index.html', 'swagger-initializer.js', 'package.json', '%2e%2e%2fpackage.json']) {
      expect((await fetch(`${frontend.url}/docs/assets/${file}`)).status).toBe(404);
    }
  });
});
