import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type FileChooser,
  type Locator,
  type Page,
} from 'playwright-core';
import { IMAGE_TYPES, OPERATION_DESCRIPTIONS, OPERATIONS } from '@pixelmill/contracts';
import { pngChunk, pngDeclaring } from '@pixelmill/contracts/testing';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { createApp, type FrontendAppDeps } from '../../src/app';
import { ownerIdOf } from '../../src/domain/api-keys';
import { InProcessRateLimiter } from '../../src/domain/rate-limiter';
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

/** Screenshots of the page in its main states, for people to look at (git-ignored). */
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

/** A real 1×1 PNG, so the browser can decode the result it is shown. */
const DOT_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

type Rgb = readonly [number, number, number];

/** A real RGB PNG of `width`×`height` whose pixel (x, y) is `colour(x, y)`. */
function png(width: number, height: number, colour: (x: number, y: number) => Rgb): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) rows.set(colour(x, y), y * (1 + width * 3) + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', zlib.deflateSync(rows, { level: 9 })),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** Three small pictures that tell apart, each with its red and blue swapped: what master "made" of it. */
const PICTURES: Record<string, (x: number, y: number) => Rgb> = {
  'sunset.png': (_x, y) => [250, 120 + y, 40 + 2 * y],
  'sea.png': (x, y) => (y > 40 ? [20, 90, 160 + (x % 32)] : [170, 215, 245]),
  'sun.png': (x, y) => ((x - 48) ** 2 + (y - 32) ** 2 < 400 ? [255, 200, 0] : [90, 160, 70]),
};
const picture = (name: string, swapped = false): Buffer =>
  png(96, 64, (x, y) => {
    const [r, g, b] = PICTURES[name]!(x, y);
    return swapped ? [b, g, r] : [r, g, b];
  });

/** The little of the page's globals these tests read in it (they are compiled without the DOM's types). */
interface PageGlobals {
  document: {
    activeElement: { id: string; getAttribute(name: string): string | null } | null;
    getElementById(id: string): unknown;
  };
  localStorage: { getItem(key: string): string | null; [key: string]: unknown };
  getComputedStyle(element: unknown, pseudo: string): { animationName: string };
  XMLHttpRequest: { prototype: { send: (this: unknown, body?: unknown) => void } };
  FormData: new () => { entries(): Iterable<[string, string | { name: string }]> };
  sentForms?: Array<Array<[string, string]>>;
  DataTransfer: new () => { items: { add(file: unknown): void } };
  File: new (parts: unknown[], name: string, options: { type: string }) => unknown;
}

/**
 * Records the fields of each form the page's script sends, in order (a file as `file:<name>`):
 * Chromium does not tell the post data of a request whose body holds a file. An init script,
 * so the page's CSP does not apply to it.
 */
const recordSentForms = async (page: Page): Promise<void> => {
  await page.addInitScript(() => {
    const page = globalThis as unknown as PageGlobals;
    const send = page.XMLHttpRequest.prototype.send;
    page.sentForms = [];
    page.XMLHttpRequest.prototype.send = function (this: unknown, body?: unknown) {
      if (body instanceof page.FormData) {
        page.sentForms!.push([...body.entries()].map(([name, value]) => [name, typeof value === 'string' ? value : `file:${value.name}`]));
      }
      send.call(this, body);
    };
  });
};
const sentForms = (page: Page): Promise<Array<Array<[string, string]>>> =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).sentForms ?? []);

/** The focused element's id, or its aria-label: run in the page. */
const focusedId = (page: Page): Promise<string> =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id ?? '');
const focusedLabel = (page: Page): Promise<string | null | undefined> =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.getAttribute('aria-label'));

const API_KEY = 'browser-test-key-0123456789';
/** The formats the page names: "PNG, JPEG, BMP or GIF". */
const TYPE_NAMES = IMAGE_TYPES.map((type) => type.replace('image/', '').toUpperCase())
  .join(', ')
  .replace(/, ([^,]*)$/, ' or $1');
const WAIT = { timeout: 20_000 };

jest.setTimeout(60_000);

describeInBrowser(`upload page in Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  let master: FakeMaster;
  let frontend: Listening;
  let problems: string[];
  /** Closed after each test, passed or not: a page left open would keep polling, and the servers could not close. */
  let contexts: BrowserContext[];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await browser.close();
  });

  const startFrontend = (options: Partial<FrontendAppDeps> = {}): Promise<Listening> => {
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url } });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: 4096,
      ...options,
    });
    return listen(app, 0);
  };

  /** The same page, served by a frontend started anew with these options. */
  const restartFrontend = async (options: Partial<FrontendAppDeps>): Promise<void> => {
    await frontend.close();
    frontend = await startFrontend(options);
  };

  beforeEach(async () => {
    master = await startFakeMaster();
    frontend = await startFrontend();
    problems = [];
    contexts = [];
  });

  afterEach(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    master.uploadGate = undefined;
    await frontend.close();
    await master.close();
    // Script errors and CSP violations show up here; the page must have none.
    expect(problems).toEqual([]);
  });

  /** Drops the expected refusals (their statuses) from the problems the page had. */
  const expectOnlyRefusals = (...statuses: number[]): void => {
    problems = problems.filter((problem) => !statuses.some((status) => problem.includes(String(status))));
  };

  const openPage = async (
    javaScriptEnabled: boolean,
    urlPath = '/',
    options: BrowserContextOptions = {},
    prepare?: (page: Page) => Promise<void>,
  ): Promise<Page> => {
    const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 1100, height: 900 }, ...options });
    contexts.push(context);
    const page = await context.newPage();
    await prepare?.(page);
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });
    await page.goto(`${frontend.url}${urlPath}`);
    return page;
  };

  const screenshot = (page: Page, name: string): Promise<Buffer> =>
    page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true, animations: 'disabled' });

  /** Polls `check` (from here: a predicate run in the page would be eval'ed, which its CSP forbids) until it holds. */
  const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const waitForTasks = async (count: number): Promise<FakeTask[]> => {
    await until(`${count} tasks at master`, () => master.tasks.size >= count);
    expect(master.tasks.size).toBe(count);
    return [...master.tasks.values()];
  };

  /** The task master made of these bytes. */
  const taskOf = (bytes: Buffer): FakeTask => {
    const task = [...master.tasks.values()].find((candidate) => candidate.bytes.equals(bytes));
    if (!task) throw new Error('no task of these bytes');
    return task;
  };

  const finish = (task: FakeTask, result: Buffer = DOT_PNG): void => {
    task.result = { bytes: result, contentType: 'image/png' };
    task.state = 'finished';
  };

  const cardOf = (page: Page, name: string): Locator => page.locator('#cards .card', { has: page.locator('h3', { hasText: name }) });

  const waitForState = async (card: Locator, state: string): Promise<void> => {
    await card.and(card.page().locator(`[data-state="${state}"]`)).waitFor(WAIT);
  };

  /** Resolves once the image has loaded and decoded, with its natural width. */
  const decodedWidth = async (image: Locator): Promise<number> => {
    await image.waitFor({ state: 'attached', ...WAIT });
    let width = 0;
    await until('the image to decode', async () => {
      width = await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth);
      return width > 0;
    });
    return width;
  };

  const announcements = (page: Page): Promise<string> => page.locator('#announcer').innerText();

  describe('with JavaScript', () => {
    it('when an image is uploaded, then its card follows the state and shows the result beside the original, with a download link', async () => {
      const page = await openPage(true);
      const bytes = picture('sun.png');
      await page.selectOption('#op', 'invert');
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: bytes });
      await page.click('#upload');

      const [task] = await waitForTasks(1);
      expect(task!.op).toBe('invert');
      const card = cardOf(page, 'sun.png');
      await waitForState(card, 'not_started');
      expect(await card.locator('.card-meta').innerText()).toContain('invert');

      task!.state = 'in_progress';
      await waitForState(card, 'in_progress');
      finish(task!, picture('sun.png', true));
      await waitForState(card, 'finished');
      expect(await decodedWidth(card.locator('img.result'))).toBe(96);
      expect(await card.locator('img.result').getAttribute('src')).toBe(`/image/get?id=${task!.id}`);
      expect(await decodedWidth(card.locator('img.original'))).toBe(96);
      expect(await card.locator('img.original').getAttribute('src')).toMatch(/^blob:/);
      const download = card.locator('a[download]');
      expect(await download.getAttribute('href')).toBe(`/image/get?id=${task!.id}`);
      expect(await download.getAttribute('download')).toBe('sun-invert.png');
      expect(await announcements(page)).toContain('sun.png: finished');
      await page.context().close();
    });

    it('when three images are chosen at once, then each gets a card that reaches its result, beside its original', async () => {
      const page = await openPage(true);
      const names = Object.keys(PICTURES);
      await page.selectOption('#op', 'swap-red-blue');
      await page.setInputFiles(
        '#image',
        names.map((name) => ({ name, mimeType: 'image/png', buffer: picture(name) })),
      );
      expect(await page.innerText('#upload')).toBe('Upload 3 images');
      await page.click('#upload');

      await waitForTasks(3);
      for (const name of names) {
        await waitForState(cardOf(page, name), 'not_started');
        finish(taskOf(picture(name)), picture(name, true));
      }
      for (const name of names) {
        const card = cardOf(page, name);
        await waitForState(card, 'finished');
        expect(await decodedWidth(card.locator('img.result'))).toBe(96);
        expect(await decodedWidth(card.locator('img.original'))).toBe(96);
        expect(await card.locator('a[download]').getAttribute('href')).toBe(`/image/get?id=${taskOf(picture(name)).id}`);
      }
      expect(await page.locator('#cards .card').count()).toBe(3);
      await screenshot(page, 'three-finished.png');
      await page.setViewportSize({ width: 390, height: 844 });
      await screenshot(page, 'three-finished-narrow.png');
      await page.context().close();
    });

    it('when several images are uploaded, then two go at a time, each with a labelled progress bar, and the rest wait their turn', async () => {
      let open: () => void = () => undefined;
      master.uploadGate = new Promise((resolve) => (open = resolve));
      const page = await openPage(true);
      const names = Object.keys(PICTURES);
      await page.setInputFiles(
        '#image',
        names.map((name) => ({ name, mimeType: 'image/png', buffer: picture(name) })),
      );
      await page.click('#upload');

      // Two uploads reached master and are held there; the third has not started.
      await until('two uploads at master', () => master.newImageCalls.length === 2);
      await page.locator('#cards .card[data-state="uploading"]').nth(1).waitFor(WAIT);
      const waiting = page.locator('#cards .card[data-state="queued"]');
      await waiting.waitFor(WAIT);
      expect(await waiting.count()).toBe(1);
      expect(master.newImageCalls).toHaveLength(2);
      const uploading = page.locator('#cards .card[data-state="uploading"]').first();
      const name = await uploading.locator('h3').innerText();
      expect(await page.getByRole('progressbar', { name: `Upload of ${name}` }).count()).toBe(1);
      await screenshot(page, 'uploading.png');

      open();
      await waitForTasks(3);
      for (const card of names.map((n) => cardOf(page, n))) await waitForState(card, 'not_started');
      await page.context().close();
    });

    it('when images are dropped on the page, then the zone lights up, they become the selection, and Upload sends them', async () => {
      const page = await openPage(true);
      const files = ['sun.png', 'sea.png'].map((name) => ({ name, type: 'image/png', bytes: [...picture(name)] }));
      const dataTransfer = await page.evaluateHandle((list) => {
        const { DataTransfer, File } = globalThis as unknown as PageGlobals;
        const transfer = new DataTransfer();
        for (const { name, type, bytes } of list) transfer.items.add(new File([new Uint8Array(bytes)], name, { type }));
        return transfer;
      }, files);

      await page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer });
      expect(await page.getAttribute('#drop-zone', 'class')).toContain('dragging');
      await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
      expect(await page.getAttribute('#drop-zone', 'class')).not.toContain('dragging');
      expect(await page.innerText('#selection')).toBe('Chosen: sun.png, sea.png');
      expect(await page.innerText('#upload')).toBe('Upload 2 images');
      expect(await focusedId(page)).toBe('upload');

      await page.keyboard.press('Enter');
      await waitForTasks(2);
      for (const name of ['sun.png', 'sea.png']) await waitForState(cardOf(page, name), 'not_started');
      await page.context().close();
    });

    it('when files are refused before they are sent, then each card says why: not an image, too large', async () => {
      const page = await openPage(true);
      await page.setInputFiles('#image', [
        { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') },
        { name: 'huge.png', mimeType: 'image/png', buffer: Buffer.alloc(5000) },
        { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') },
      ]);
      await page.click('#upload');

      const notes = cardOf(page, 'notes.txt');
      await waitForState(notes, 'refused');
      expect(await notes.locator('.card-error').innerText()).toBe(
        `Not an image pixelmill takes (this is text/plain); it takes ${TYPE_NAMES}.`,
      );
      const huge = cardOf(page, 'huge.png');
      await waitForState(huge, 'refused');
      expect(await huge.locator('.card-error').innerText()).toBe('Too large: 4.9 KB; the limit is 4 KB.');
      await waitForState(cardOf(page, 'sun.png'), 'not_started');
      // Only the image went.
      expect(master.newImageCalls).toHaveLength(1);
      await screenshot(page, 'card-errors.png');
      await page.context().close();
    });

    it('when the server refuses uploads, then its message is shown on the card of each: not an image (415), too many pixels (413)', async () => {
      const page = await openPage(true);
      await page.setInputFiles('#image', [
        { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not an image at all') },
        { name: 'bomb.png', mimeType: 'image/png', buffer: Buffer.from(pngDeclaring(100_000, 100_000, 200)) },
      ]);
      await page.click('#upload');

      const fake = cardOf(page, 'fake.png');
      await waitForState(fake, 'refused');
      expect(await fake.locator('.card-error').innerText()).toMatch(/^Not an image pixelmill takes: the upload is not a PNG/);
      const bomb = cardOf(page, 'bomb.png');
      await waitForState(bomb, 'refused');
      expect(await bomb.locator('.card-error').innerText()).toMatch(/^Too large: the image declares 100,000×100,000 pixels/);
      // Neither can pass as it is: no "Try again" for them.
      expect(await page.locator('#cards button', { hasText: 'Try again' }).count()).toBe(0);
      expect(master.tasks.size).toBe(0);
      expectOnlyRefusals(413, 415);
      await page.context().close();
    });

    it('when there are too many uploads, then the card says when to try again, and "Try again" then uploads it', async () => {
      let now = 0;
      await restartFrontend({ uploadLimiter: new InProcessRateLimiter({ ratePerMinute: 1, burst: 1, now: () => now }) });
      const page = await openPage(true);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');
      await waitForState(cardOf(page, 'sun.png'), 'not_started');
      await page.setInputFiles('#image', { name: 'sea.png', mimeType: 'image/png', buffer: picture('sea.png') });
      await page.click('#upload');

      const card = cardOf(page, 'sea.png');
      await waitForState(card, 'refused');
      expect(await card.locator('.card-error').innerText()).toMatch(/^Too many uploads: .+\. Try again in 60 s \(after .+\)\.$/);
      expectOnlyRefusals(429);

      now += 60_000;
      await card.getByRole('button', { name: 'Try uploading sea.png again' }).click();
      await waitForState(card, 'not_started');
      expect(await card.locator('.card-error').isHidden()).toBe(true);
      expect(master.tasks.size).toBe(2);
      await page.context().close();
    });

    it('when an image fails, then its card gives the reason', async () => {
      const page = await openPage(true);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');
      const [task] = await waitForTasks(1);
      task!.state = 'failed';
      task!.error = 'the image does not decode';

      const card = cardOf(page, 'sun.png');
      await waitForState(card, 'failed');
      expect(await card.locator('.card-error').innerText()).toBe('Why: the image does not decode');
      expect(await announcements(page)).toContain('sun.png: Why: the image does not decode');
      await page.context().close();
    });

    it('when the page is reloaded, then the list comes back with each image’s state now, and cards can be removed or the list cleared', async () => {
      const page = await openPage(true);
      const names = ['sunset.png', 'sea.png', 'sun.png'];
      await page.selectOption('#op', 'grayscale');
      await page.setInputFiles(
        '#image',
        names.map((name) => ({ name, mimeType: 'image/png', buffer: picture(name) })),
      );
      await page.click('#upload');
      await waitForTasks(3);
      await page.setInputFiles('#image', [
        { name: 'old.png', mimeType: 'image/png', buffer: DOT_PNG },
        { name: 'lost.png', mimeType: 'image/png', buffer: png(2, 2, () => [1, 2, 3]) },
      ]);
      await page.click('#upload');
      await waitForTasks(5);
      for (const name of [...names, 'old.png', 'lost.png']) await waitForState(cardOf(page, name), 'not_started');
      // The thumbnails are kept once made.
      await until('the thumbnails', async () =>
        page.evaluate(() =>
          (
            JSON.parse((globalThis as unknown as PageGlobals).localStorage.getItem('pixelmill.uploads') ?? '[]') as Array<{
              thumb?: string;
            }>
          ).every((e) => e.thumb),
        ),
      );

      finish(taskOf(picture('sunset.png')), picture('sunset.png', true));
      await waitForState(cardOf(page, 'sunset.png'), 'finished');
      const sea = taskOf(picture('sea.png'));
      sea.state = 'failed';
      sea.error = 'the worker gave up';
      taskOf(picture('sun.png')).state = 'in_progress';
      taskOf(DOT_PNG).expired = true;
      master.tasks.delete(taskOf(png(2, 2, () => [1, 2, 3])).id);

      await page.reload();
      const sunset = cardOf(page, 'sunset.png');
      await waitForState(sunset, 'finished');
      expect(await decodedWidth(sunset.locator('img.result'))).toBe(96);
      // The original, from its thumbnail kept in this browser.
      expect(await decodedWidth(sunset.locator('img.original'))).toBe(96);
      expect(await sunset.locator('figcaption').first().innerText()).toBe('Original (thumbnail)');
      expect(await sunset.locator('.card-meta').innerText()).toMatch(/grayscale · uploaded \d/);
      await waitForState(cardOf(page, 'sea.png'), 'failed');
      expect(await cardOf(page, 'sea.png').locator('.card-error').innerText()).toBe('Why: the worker gave up');
      await waitForState(cardOf(page, 'sun.png'), 'in_progress');
      const old = cardOf(page, 'old.png');
      await waitForState(old, 'gone');
      expect(await old.locator('.card-error').innerText()).toMatch(
        /^Image .+ has expired: results are deleted after the retention time\.$/,
      );
      const lost = cardOf(page, 'lost.png');
      await waitForState(lost, 'unknown');
      expect(await lost.locator('.card-error').innerText()).toMatch(
        /^pixelmill does not know this image \(any more\), or another API key uploaded it: no image with id/,
      );
      // Newest first, as before the reload.
      expect(await page.locator('#cards .card h3').allInnerTexts()).toEqual(['lost.png', 'old.png', 'sun.png', 'sea.png', 'sunset.png']);
      await screenshot(page, 'after-reload.png');
      expectOnlyRefusals(404, 410);

      await cardOf(page, 'old.png').getByRole('button', { name: 'Remove old.png from the list' }).click();
      expect(await page.locator('#cards .card').count()).toBe(4);
      // Focus moves on to the next card's button, not back to the page's top.
      expect(await focusedLabel(page)).toBe('Remove sun.png from the list');
      await page.reload();
      await waitForState(cardOf(page, 'sun.png'), 'in_progress');
      expect(await page.locator('#cards .card h3').allInnerTexts()).toEqual(['lost.png', 'sun.png', 'sea.png', 'sunset.png']);
      expectOnlyRefusals(404);

      await page.click('#clear-list');
      expect(await page.locator('#uploads').isHidden()).toBe(true);
      await page.reload();
      expect(await page.locator('#cards .card').count()).toBe(0);
      expect(await page.locator('#uploads').isHidden()).toBe(true);
      await page.context().close();
    });

    it('when only the keyboard is used, then Tab reaches the operation, the file chooser, the upload button and the cards’ buttons', async () => {
      const page = await openPage(true);
      // Listened for from the start: the first chooser could open before a later listener is in place.
      const chooser = new Promise<FileChooser>((resolve) => page.once('filechooser', resolve));
      const focusOrder: string[] = [];
      for (let i = 0; i < 6 && focusOrder.at(-1) !== 'upload'; i += 1) {
        await page.keyboard.press('Tab');
        focusOrder.push(await focusedId(page));
      }
      expect(focusOrder).toEqual(['op', 'image', 'upload']);

      // The file chooser opens from the keyboard, and Enter on the button uploads.
      await page.focus('#image');
      await page.keyboard.press('Space');
      expect((await chooser).isMultiple()).toBe(true);
      await (await chooser).setFiles({ name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.keyboard.press('Tab');
      expect(await focusedId(page)).toBe('upload');
      await page.keyboard.press('Enter');
      await waitForState(cardOf(page, 'sun.png'), 'not_started');

      await page.keyboard.press('Tab');
      expect(await focusedId(page)).toBe('clear-list');
      await page.keyboard.press('Tab');
      expect(await focusedLabel(page)).toBe('Remove sun.png from the list');
      await page.keyboard.press('Enter');
      expect(await page.locator('#cards .card').count()).toBe(0);
      expect(await focusedId(page)).toBe('image');
      await page.context().close();
    });

    it('when an operation is chosen, then its preview shows the sample picture changed by it, with what it does', async () => {
      const page = await openPage(true);
      await page.locator('#op-preview').waitFor(WAIT);
      await screenshot(page, 'empty.png');
      const pictures = () =>
        page.evaluate(() => {
          const canvas = (id: string) =>
            (globalThis as unknown as PageGlobals).document.getElementById(id) as {
              toDataURL(): string;
              width: number;
              height: number;
              hidden: boolean;
            };
          const [before, after] = [canvas('op-preview-before'), canvas('op-preview-after')];
          return { before: before.toDataURL(), after: after.toDataURL(), width: after.width, height: after.height, hidden: after.hidden };
        });
      for (const op of OPERATIONS) {
        await page.selectOption('#op', op);
        expect(await page.innerText('#op-preview-caption')).toContain(`${op}: ${OPERATION_DESCRIPTIONS[op]}`);
        const shown = await pictures();
        if (!shown.hidden) expect(shown.after).not.toBe(shown.before);
        if (op === 'rotate-90' || op === 'rotate-270') expect([shown.width, shown.height]).toEqual([64, 96]);
        if (op === 'invert') expect([shown.width, shown.height, shown.hidden]).toEqual([96, 64, false]);
      }
      await page.context().close();
    });

    it('when the operation is not resize, then the size fields are hidden and nothing of them is sent', async () => {
      const page = await openPage(true, '/', {}, recordSentForms);
      await page.selectOption('#op', 'grayscale');
      expect(await page.locator('#width').isHidden()).toBe(true);
      expect(await page.locator('#height').isHidden()).toBe(true);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');
      await waitForTasks(1);

      expect(await sentForms(page)).toEqual([
        [
          ['op', 'grayscale'],
          ['image', 'file:sun.png'],
        ],
      ]);
      await page.context().close();
    });

    // Runs once the contract lists resize; the page is ready for it either way.
    const withResize = (OPERATIONS as readonly string[]).includes('resize') ? it : it.skip;
    withResize('when the operation is resize, then the size fields show and are sent before the image', async () => {
      const page = await openPage(true, '/', {}, recordSentForms);
      await page.selectOption('#op', 'resize');
      expect(await page.locator('#width').isVisible()).toBe(true);
      await page.fill('#width', '800');
      await page.fill('#height', '600');
      await screenshot(page, 'resize-fields.png');
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');
      await waitForTasks(1);

      expect(await sentForms(page)).toEqual([
        [
          ['op', 'resize'],
          ['width', '800'],
          ['height', '600'],
          ['image', 'file:sun.png'],
        ],
      ]);
      await page.context().close();
    });

    it('when the user asks for less motion, then nothing on the page moves', async () => {
      const pulse = async (page: Page): Promise<string> => {
        master.tasks.clear();
        await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
        await page.click('#upload');
        const [task] = await waitForTasks(1);
        task!.state = 'in_progress';
        const badge = page.locator('#cards .state[data-state="in_progress"]');
        await badge.waitFor(WAIT);
        return badge.evaluate((node) => (globalThis as unknown as PageGlobals).getComputedStyle(node, '::before').animationName);
      };
      const moving = await openPage(true);
      expect(await pulse(moving)).toBe('pulse');
      await moving.context().close();
      const still = await openPage(true, '/', { reducedMotion: 'reduce' });
      expect(await pulse(still)).toBe('none');
      await still.context().close();
    });

    it('when the status page of an image in work is opened, then it follows the state without reloading', async () => {
      const task: FakeTask = { id: crypto.randomUUID(), op: 'grayscale', contentType: 'image/png', bytes: DOT_PNG, state: 'in_progress' };
      master.tasks.set(task.id, task);
      const page = await openPage(true, `/?id=${task.id}`);
      let reloads = 0;
      page.on('framenavigated', () => (reloads += 1));

      finish(task);
      await decodedWidth(page.locator('#status img'));
      expect(reloads).toBe(0);
      await page.context().close();
    });
  });

  describe('without JavaScript', () => {
    it('when the form is posted, then the status page refreshes itself and shows the result', async () => {
      const page = await openPage(false);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

      const [task] = await waitForTasks(1);
      expect(new URL(page.url()).search).toBe(`?id=${task!.id}`);
      expect(await page.getAttribute('#status .state', 'data-state')).toBe('not_started');

      finish(task!, picture('sun.png', true));
      const image = await page.waitForSelector('#status img', WAIT);
      expect(await image.getAttribute('src')).toBe(`/image/get?id=${task!.id}`);
      await decodedWidth(page.locator('#status img'));
      await screenshot(page, 'nojs-status.png');
      await page.context().close();
    });

    it('when the form is shown, then the picker says what every operation does, and the one chosen is posted', async () => {
      const page = await openPage(false);
      const labels = await page.locator('#op option').allInnerTexts();
      expect(labels).toEqual(OPERATIONS.map((op) => `${op} — ${OPERATION_DESCRIPTIONS[op]}`));
      expect(await page.inputValue('#op')).toBe('swap-red-blue');
      await page.selectOption('#op', 'rotate-90');
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

      expect((await waitForTasks(1))[0]!.op).toBe('rotate-90');
      await page.context().close();
    });

    it('when the form is shown, then it takes one file, and the size fields are there with their hint, before the file', async () => {
      const page = await openPage(false);
      await screenshot(page, 'nojs-empty.png');
      expect(await page.getAttribute('#image', 'multiple')).toBeNull();
      expect(await page.locator('#width').isVisible()).toBe(true);
      expect(await page.locator('#height').isVisible()).toBe(true);
      expect(await page.innerText('#resize-hint')).toContain('For the resize operation only');
      expect(await page.locator('#op-preview').isHidden()).toBe(true);
      // A form is sent in the order of its fields (Chromium does not show the post data of a form with a file).
      const names = await page
        .locator('#upload-form [name]')
        .evaluateAll((fields) => fields.map((field) => (field as unknown as { name: string }).name));
      expect(names).toEqual(['op', 'width', 'height', 'image']);

      // Left empty, as for any operation but resize, they do not stand in the upload's way.
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);
      expect((await waitForTasks(1))[0]!.op).toBe('swap-red-blue');
      await page.context().close();
    });
  });

  describe('with API keys', () => {
    beforeEach(() => restartFrontend({ apiKeys: [API_KEY] }));

    it('when JavaScript runs, then the key goes as a header (not in the form), and the result is fetched with it and shown', async () => {
      const page = await openPage(true, '/', {}, recordSentForms);
      const keys: Array<string | undefined> = [];
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/newImage') keys.push(request.headers()['x-api-key']);
      });
      await page.fill('#api-key', API_KEY);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');

      const [task] = await waitForTasks(1);
      expect(task!.owner).toBe(ownerIdOf(API_KEY));
      expect(keys).toEqual([API_KEY]);
      expect(await sentForms(page)).toEqual([
        [
          ['op', 'swap-red-blue'],
          ['image', 'file:sun.png'],
        ],
      ]);
      const card = cardOf(page, 'sun.png');
      await waitForState(card, 'not_started');

      finish(task!, picture('sun.png', true));
      // Loaded from memory (an <img> cannot send the key) and allowed by the page's CSP.
      await waitForState(card, 'finished');
      expect(await decodedWidth(card.locator('img.result'))).toBe(96);
      expect(await card.locator('img.result').getAttribute('src')).toMatch(/^blob:/);
      expect(await card.locator('a[download]').getAttribute('download')).toBe('sun-swap-red-blue.png');
      // The key is in no storage of this browser.
      expect(await page.evaluate(() => JSON.stringify({ ...(globalThis as unknown as PageGlobals).localStorage }))).not.toContain(API_KEY);
      await page.context().close();
    });

    it('when JavaScript runs with a wrong key, then the refusal is shown on the card', async () => {
      const page = await openPage(true);
      await page.fill('#api-key', 'not-the-key-0123456789');
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');

      const card = cardOf(page, 'sun.png');
      await waitForState(card, 'refused');
      expect(await card.locator('.card-error').innerText()).toBe('The API key is missing or wrong: the API key is not valid.');
      expect(master.tasks.size).toBe(0);
      await screenshot(page, 'wrong-key.png');
      expectOnlyRefusals(401);
      await page.context().close();
    });

    it('when the page is reloaded, then the cards ask for the key, and follow their images once it is entered', async () => {
      const page = await openPage(true);
      await page.fill('#api-key', API_KEY);
      await page.setInputFiles('#image', { name: 'sun.png', mimeType: 'image/png', buffer: picture('sun.png') });
      await page.click('#upload');
      const [task] = await waitForTasks(1);
      await waitForState(cardOf(page, 'sun.png'), 'not_started');

      await page.reload();
      const card = cardOf(page, 'sun.png');
      await waitForState(card, 'locked');
      expect(await card.locator('.card-error').innerText()).toMatch(/^Enter the API key that uploaded this image/);
      finish(task!);
      await page.fill('#api-key', API_KEY);
      await page.press('#api-key', 'Tab');
      await waitForState(card, 'finished');
      expect(await decodedWidth(card.locator('img.result'))).toBe(1);
      expectOnlyRefusals(401);
      await page.context().close();
    });

    it('when JavaScript is off, then the form sends the key as a field and the status page says a key is needed', async () => {
      const page = await openPage(false);
      await page.fill('#api-key', API_KEY);
      await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await Promise.all([page.waitForURL(/\/\?id=/), page.click('button[type="submit"]')]);

      const [task] = await waitForTasks(1);
      expect(task!.owner).toBe(ownerIdOf(API_KEY));
      expect(new URL(page.url()).search).toBe(`?id=${task!.id}`);
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
      await page.waitForSelector('#status [data-state="in_progress"]', WAIT);
      finish(task);
      await decodedWidth(page.locator('#status img'));
      await page.context().close();
    });
  });
});
