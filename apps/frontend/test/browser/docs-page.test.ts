import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { OPERATION_DESCRIPTIONS, OPERATIONS } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';

const DOCS_HOST = 'pixelmill.test';

// Debian's Chromium, never a downloaded browser build: without it these tests are skipped.
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Served under a name that is not loopback, as in a deployment: Swagger UI skips its online
  // validator for localhost and 127.0.0.1 only.
  `--host-resolver-rules=MAP ${DOCS_HOST} 127.0.0.1`,
];
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) process.stdout.write(`skipping the browser tests: ${CHROMIUM} is not installed\n`);
const describeInBrowser = hasChromium ? describe : describe.skip;

const document = JSON.parse(fs.readFileSync(require.resolve('@pixelmill/contracts/openapi/frontend.json'), 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
};
const OPERATION_COUNT = Object.values(document.paths).reduce((count, item) => count + Object.keys(item).length, 0);

jest.setTimeout(30_000);

describeInBrowser(`docs page in Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  let frontend: Listening;
  let problems: string[];
  /** Every request the page made that was not to the frontend; each was stopped before it left. */
  let elsewhere: string[];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser.close();
  });

  beforeEach(async () => {
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: 'http://127.0.0.1:9' } });
    frontend = await listen(
      createApp({ master: discovery.client('master'), logger: createLogger('frontend', 'silent'), maxUploadBytes: 4096 }),
      0,
    );
    problems = [];
    elsewhere = [];
  });

  afterEach(async () => {
    await frontend.close();
    // Script errors and CSP violations show up here; the page must have none.
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
  });

  const openDocs = async (): Promise<Page> => {
    const context = await browser.newContext();
    const origin = `http://${DOCS_HOST}:${frontend.port}`;
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith('data:') || new URL(url).origin === origin) {
        await route.continue();
      } else {
        elsewhere.push(url);
        await route.abort();
      }
    });
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });
    await page.goto(`${origin}/docs`);
    return page;
  };

  it('when opened, then it shows every operation of the document, loading nothing from another host', async () => {
    const page = await openDocs();
    await page.waitForSelector('.opblock');
    expect(await page.locator('.opblock').count()).toBe(OPERATION_COUNT);
    const summaries = await page.locator('.opblock-summary-path').allInnerTexts();
    expect(summaries.map((text) => text.replace(/\u200b/g, ''))).toEqual(
      expect.arrayContaining(['/newImage', '/image/isReady', '/image/get', '/openapi.json']),
    );
    await page.locator('#operations-frontend-newImage .opblock-summary').first().click();
    const upload = page.locator('#operations-frontend-newImage');
    await upload.locator('.parameters').waitFor();
    // The operation enum of the contract, offered for ?op=, each with what it does.
    const text = await upload.innerText();
    for (const op of OPERATIONS) expect(text).toContain(`${op}: ${OPERATION_DESCRIPTIONS[op]}`);
  });

  it('when an operation is tried out, then the page calls this server and shows its answer', async () => {
    const page = await openDocs();
    const health = page.locator('#operations-common-health');
    await health.locator('.opblock-summary').first().click();
    await health.locator('button.try-out__btn').click();
    await health.locator('button.execute').click();
    const status = health.locator('.live-responses-table tr.response .response-col_status').first();
    await status.waitFor();
    expect((await status.innerText()).trim()).toBe('200');
    expect(await health.locator('.live-responses-table').innerText()).toContain('"service": "frontend"');
  });
});
