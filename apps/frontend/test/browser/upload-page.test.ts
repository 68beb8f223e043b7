import crypto from 'node:crypto';
import fs from 'node:fs';
import { chromium, type Browser, type ElementHandle, type Page } from 'playwright-core';
import { OPERATION_DESCRIPTIONS, OPERATIONS } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { ownerIdOf } from '../../src/domain/api-keys';
import { startFakeMaster, type FakeMaster, type FakeTask } from '../component/fake-master';

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
];
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) process.stdout.write(`skipping the browser tests: ${CHROMIUM} is not installed\n`);
const describeInBrowser = hasChromium ? describe : describe.skip;

/** A real 1×1 PNG, so the browser can decode the result it is shown. */
const DOT_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

const API_KEY = 'browser-test-key-0123456789';

jest.setTimeout(30_000);

describeInBrowser(`upload page in Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  let master: FakeMaster;
  let frontend: Listening;
  let problems: string[];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser.close();
  });

  const startFrontend = (apiKeys?: string[]): Promise<Listening> => {
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url } });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: 4096,
      apiKeys,
    });
    return listen(app, 0);
  };

  /** The same page, served by a frontend that needs API keys. */
  const requireApiKeys = async (): Promise<void> => {
    await frontend.close();
    frontend = await startFrontend([API_KEY]);
  };

  beforeEach(async () => {
    master = await startFakeMaster();
    frontend = await startFrontend();
    problems = [];
  });

  afterEach(async () => {
    await frontend.close();
    await master.close();
    // Script errors and CSP violations show up here; the page must have none.
    expect(problems).toEqual([]);
  });

  const openPage = async (javaScriptEnabled: boolean, path = '/'): Promise<Page> => {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });
    await page.goto(`${frontend.url}${path}`);
    return page;
  };

  const waitForTask = async (): Promise<FakeTask> => {
    for (let i = 0; i < 100 && master.tasks.size === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(master.tasks.size).toBe(1);
    return [...master.tasks.values()][0]!;
  };

  /**
   * Resolves once the status image has loaded and decoded (1×1 px). Polled from here: a string
   * predicate of waitForFunction would be eval'ed in the page, which its CSP rightly forbids.
   */
  const waitForDecodedImage = async (page: Page): Promise<ElementHandle> => {
    const image = await page.waitForSelector('#status img');
    for (let i = 0; i < 100; i += 1) {
      if (await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth === 1)) return image;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the result image did not load');
  };

  const finish = (task: FakeTask): void => {
    task.state = 'finished';
    task.result = { bytes: DOT_PNG, contentType: 'image/png' };
  };

  it('when JavaScript runs, then an upload shows the id, follows the state and shows the result', async () => {
    const page = await openPage(true);
    await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
    await page.selectOption('#op', 'invert');
    await page.click('button[type="submit"]');

    const task = await waitForTask();
    expect(task.op).toBe('invert');
    await page.waitForSelector('#status [data-state="not_started"]');
    expect(await page.textContent('#status code')).toBe(task.id);
    expect(new URL(page.url()).search).toBe(`?id=${task.id}`);

    task.state = 'in_progress';
    await page.waitForSelector('#status [data-state="in_progress"]');
    finish(task);
    const image = await waitForDecodedImage(page); // the result really loaded and decoded
    expect(await image.getAttribute('src')).toBe(`/image/get?id=${task.id}`);
    expect(await page.getAttribute('#status a[download]', 'href')).toBe(`/image/get?id=${task.id}`);
    await page.context().close();
  });

  it('when JavaScript runs and the image fails, then the reason is shown', async () => {
    const page = await openPage(true);
    await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
    await page.click('button[type="submit"]');
    const task = await waitForTask();
    task.state = 'failed';
    task.error = 'the image does not decode';

    await page.waitForSelector('#status [data-state="failed"]');
    expect(await page.textContent('#status [role="alert"]')).toContain('the image does not decode');
    await page.context().close();
  });

  it('when JavaScript runs and the upload is refused, then the server’s message is shown', async () => {
    const page = await openPage(true);
    await page.setInputFiles('#image', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') });
    await page.click('button[type="submit"]');

    const alert = await page.waitForSelector('#status [role="alert"]');
    expect(await alert.textContent()).toMatch(/^Upload refused: the upload is not a PNG/);
    expect(master.tasks.size).toBe(0);
    // The refused upload is the one expected failure of this page.
    expect(problems.filter((problem) => !problem.includes('415'))).toEqual([]);
    problems = [];
    await page.context().close();
  });

  it('when JavaScript runs on the status page of an image in work, then it follows the state without reloading', async () => {
    const task: FakeTask = { id: crypto.randomUUID(), op: 'grayscale', contentType: 'image/png', bytes: DOT_PNG, state: 'in_progress' };
    master.tasks.set(task.id, task);
    const page = await openPage(true, `/?id=${task.id}`);
    let reloads = 0;
    page.on('framenavigated', () => (reloads += 1));

    finish(task);
    await page.waitForSelector('#status img');
    expect(reloads).toBe(0);
    await page.context().close();
  });

  it('when JavaScript is off, then the form posts, the status page refreshes itself and shows the result', async () => {
    const page = await openPage(false);
    await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
    await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

    const task = await waitForTask();
    expect(new URL(page.url()).search).toBe(`?id=${task.id}`);
    expect(await page.getAttribute('#status .state', 'data-state')).toBe('not_started');

    finish(task);
    const image = await page.waitForSelector('#status img', { timeout: 5000 });
    expect(await image.getAttribute('src')).toBe(`/image/get?id=${task.id}`);
    await page.context().close();
  });

  it('when JavaScript is off, then the picker says what every operation does, and the one chosen is posted', async () => {
    const page = await openPage(false);
    const labels = await page.locator('#op option').allInnerTexts();
    expect(labels).toEqual(OPERATIONS.map((op) => `${op} — ${OPERATION_DESCRIPTIONS[op]}`));
    expect(await page.inputValue('#op')).toBe('swap-red-blue');
    await page.selectOption('#op', 'rotate-90');
    await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
    await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

    expect((await waitForTask()).op).toBe('rotate-90');
    await page.context().close();
  });

  describe('with API keys', () => {
    beforeEach(requireApiKeys);

    it('when JavaScript runs, then the key goes as a header (not in the form), and the result is fetched with it and shown', async () => {
      const page = await openPage(true);
      const uploads: Array<{ key?: string; body: string }> = [];
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/newImage') {
          uploads.push({ key: request.headers()['x-api-key'], body: request.postDataBuffer()?.toString('latin1') ?? '' });
        }
      });
      await page.fill('#api-key', API_KEY);
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await page.click('button[type="submit"]');

      const task = await waitForTask();
      expect(task.owner).toBe(ownerIdOf(API_KEY));
      expect(uploads).toHaveLength(1);
      expect(uploads[0]!.key).toBe(API_KEY);
      expect(uploads[0]!.body).not.toContain(API_KEY);
      await page.waitForSelector('#status [data-state="not_started"]');

      finish(task);
      // Loaded from memory (an <img> cannot send the key) and allowed by the page's CSP.
      const image = await waitForDecodedImage(page);
      expect(await image.getAttribute('src')).toMatch(/^blob:/);
      expect(await page.getAttribute('#status a[download]', 'download')).toBe(`pixelmill-${task.id}.png`);
      await page.context().close();
    });

    it('when JavaScript runs with a wrong key, then the refusal is shown', async () => {
      const page = await openPage(true);
      await page.fill('#api-key', 'not-the-key-0123456789');
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await page.click('button[type="submit"]');

      const alert = await page.waitForSelector('#status [role="alert"]');
      expect(await alert.textContent()).toBe('Upload refused: the API key is not valid');
      expect(master.tasks.size).toBe(0);
      expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
      problems = [];
      await page.context().close();
    });

    it('when JavaScript is off, then the form sends the key as a field and the status page says a key is needed', async () => {
      const page = await openPage(false);
      await page.fill('#api-key', API_KEY);
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

      const task = await waitForTask();
      expect(task.owner).toBe(ownerIdOf(API_KEY));
      expect(new URL(page.url()).search).toBe(`?id=${task.id}`);
      expect(await page.textContent('#status')).toContain('is shown only with the API key that uploaded it');
      await page.context().close();
    });

    it('when JavaScript runs on the status page and the key is entered, then the image is followed to its result', async () => {
      const task: FakeTask = {
        id: crypto.randomUUID(),
        op: 'invert',
        contentType: 'image/png',
        bytes: DOT_PNG,
        state: 'in_progress',
        owner: ownerIdOf(API_KEY),
      };
      master.tasks.set(task.id, task);
      const page = await openPage(true, `/?id=${task.id}`);
      expect(await page.textContent('#status')).toContain('Enter that key above');

      await page.fill('#api-key', API_KEY);
      await page.press('#api-key', 'Tab');
      await page.waitForSelector('#status [data-state="in_progress"]');
      finish(task);
      await waitForDecodedImage(page);
      await page.context().close();
    });
  });
});
