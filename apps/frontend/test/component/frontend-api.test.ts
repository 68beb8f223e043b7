import { randomBytes, randomUUID } from 'node:crypto';
import {
  AcceptedSchema,
  ErrorBodySchema,
  OPERATION_DESCRIPTIONS,
  OPERATIONS,
  TaskStatusSchema,
  type ErrorCode,
} from '@pixelmill/contracts';
import express from 'express';
import { createLogger, Discovery, errorHandler, listen, notFoundHandler, type Listening } from '@pixelmill/kit';
import { createApp } from '../../src/app';
import { startFakeMaster, type FakeMaster, type FakeTask } from './fake-master';

const MAX_UPLOAD_BYTES = 4096;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// SOI, then an APP0 segment longer than the test's bytes: no frame size to read, so no size limit applies.
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff];
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** Bytes that start like an image of that type, with random content so a copy can be told apart. */
const imageBytes = (signature: number[], size = 200): Buffer =>
  Buffer.concat([Buffer.from(signature), randomBytes(size - signature.length)]);
const png = (size?: number): Buffer => imageBytes(PNG_SIGNATURE, size);
const jpeg = (size?: number): Buffer => imageBytes(JPEG_SIGNATURE, size);

describe('frontend API', () => {
  let master: FakeMaster;
  let frontend: Listening;

  const startFrontend = (masterUrl: string): Promise<Listening> => {
    // As in main.ts: an explicit master address wins over discovery, so kv is never asked here.
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: masterUrl }, timeoutMs: 2000 });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
    });
    return listen(app, 0);
  };

  beforeEach(async () => {
    master = await startFakeMaster();
    frontend = await startFrontend(master.url);
  });

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${frontend.url}${path}`, { headers });

  const uploadForm = (
    file: Buffer | undefined,
    {
      op,
      fileName = 'picture.png',
      type = 'image/png',
      field = 'image',
      accept = 'application/json',
    }: {
      op?: string;
      fileName?: string;
      type?: string;
      field?: string;
      accept?: string;
    } = {},
  ) => {
    const form = new FormData();
    if (op !== undefined) form.append('op', op);
    if (file !== undefined) form.append(field, new Blob([new Uint8Array(file)], { type }), fileName);
    return fetch(`${frontend.url}/newImage`, { method: 'POST', body: form, headers: { accept }, redirect: 'manual' });
  };

  const uploadRaw = (body: Buffer, { query = '', type = 'image/png' }: { query?: string; type?: string } = {}) =>
    fetch(`${frontend.url}/newImage${query}`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'content-type': type, accept: 'application/json' },
    });

  /** Checks the error status and body shape, that the service still answers, and returns the message. */
  const expectError = async (response: Response, status: number, code: ErrorCode): Promise<string> => {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = ErrorBodySchema.parse(await response.json());
    expect(body.error.code).toBe(code);
    expect((await get('/healthz')).status).toBe(200);
    return body.error.message;
  };

  const onlyTask = (): FakeTask => {
    expect(master.tasks.size).toBe(1);
    return [...master.tasks.values()][0]!;
  };

  const addTask = (task: Partial<FakeTask> & Pick<FakeTask, 'state'>): FakeTask => {
    const full: FakeTask = { id: randomUUID(), op: 'swap-red-blue', contentType: 'image/png', bytes: png(), ...task };
    master.tasks.set(full.id, full);
    return full;
  };

  describe('POST /newImage', () => {
    it('when a form uploads an image, then it answers 202 and master gets the exact bytes, detected type and op', async () => {
      const image = png();
      const response = await uploadForm(image, { op: 'grayscale' });

      expect(response.status).toBe(202);
      const accepted = AcceptedSchema.parse(await response.json());
      const task = onlyTask();
      expect(accepted).toEqual({ id: task.id, state: 'not_started' });
      expect(task.bytes.equals(image)).toBe(true);
      expect(task.contentType).toBe('image/png');
      expect(task.op).toBe('grayscale');
    });

    it('when the file name and declared type lie, then the magic bytes decide the type sent to master', async () => {
      const image = jpeg();
      const response = await uploadForm(image, { fileName: 'holiday.png', type: 'image/png' });

      expect(response.status).toBe(202);
      expect(onlyTask().contentType).toBe('image/jpeg');
    });

    it.each([
      ['has no boundary', 'multipart/form-data', '--x\r\ncontent-disposition: form-data; name="image"\r\n\r\nabc\r\n--x--\r\n'],
      [
        'is cut short',
        'multipart/form-data; boundary=x',
        '--x\r\ncontent-disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
      ],
    ])('when a multipart form %s, then it is a 400 that says the form is malformed', async (_name, type, body) => {
      const response = await fetch(`${frontend.url}/newImage`, { method: 'POST', body, headers: { 'content-type': type } });
      const message = await expectError(response, 400, 'bad_request');
      expect(message).toContain('malformed multipart form');
      expect((await get('/healthz')).status).toBe(200);
    });

    it('when a form names no op, then the default operation is used', async () => {
      expect((await uploadForm(png())).status).toBe(202);
      expect(onlyTask().op).toBe('swap-red-blue');
    });

    it('when a raw image/png body is posted with ?op=, then it is accepted with that op', async () => {
      const image = png();
      const response = await uploadRaw(image, { query: '?op=invert' });

      expect(response.status).toBe(202);
      AcceptedSchema.parse(await response.json());
      const task = onlyTask();
      expect(task.bytes.equals(image)).toBe(true);
      expect(task.contentType).toBe('image/png');
      expect(task.op).toBe('invert');
    });

    it('when a raw body declares a wrong image type, then master gets the real one', async () => {
      expect((await uploadRaw(jpeg(), { type: 'image/gif' })).status).toBe(202);
      expect(onlyTask().contentType).toBe('image/jpeg');
    });

    it('when a browser form asks for HTML, then it is redirected with 303 to the status page', async () => {
      const response = await uploadForm(png(), { accept: BROWSER_ACCEPT });

      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe(`/?id=${onlyTask().id}`);
    });

    it('when a text file is named .png, then it is refused with 415 and master never sees it', async () => {
      const text = Buffer.from('just some words, not pixels at all\n');
      const message = await expectError(await uploadForm(text, { fileName: 'notes.png' }), 415, 'unsupported_media_type');

      expect(message).toMatch(/not a PNG, JPEG, BMP, GIF or TIFF image/);
      expect(master.tasks.size).toBe(0);
    });

    it('when a raw body is not an image, then it is refused with 415', async () => {
      await expectError(await uploadRaw(Buffer.from('{"image":"x"}'), { type: 'application/json' }), 415, 'unsupported_media_type');
      expect(master.tasks.size).toBe(0);
    });

    it.each([
      ['an empty raw body', () => uploadRaw(Buffer.alloc(0))],
      ['no body at all', () => fetch(`${frontend.url}/newImage`, { method: 'POST' })],
      ['a form without the image field', () => uploadForm(undefined, { op: 'invert' })],
      ['a form with an empty file', () => uploadForm(Buffer.alloc(0))],
    ])('when the upload has %s, then it is refused with 400 saying how to send an image', async (_name, send) => {
      const message = await expectError(await send(), 400, 'bad_request');

      expect(message).toMatch(/"image"/);
      expect(message).toMatch(/raw image body/);
      expect(master.tasks.size).toBe(0);
    });

    it('when a form sends the file in another field, then it is refused with 400 naming the field', async () => {
      const message = await expectError(await uploadForm(png(), { field: 'file' }), 400, 'bad_request');
      expect(message).toMatch(/"image"/);
    });

    it.each([
      ['a form field', () => uploadForm(png(), { op: 'sharpen' })],
      ['the query of a raw upload', () => uploadRaw(png(), { query: '?op=sharpen' })],
    ])('when %s names an unknown op, then it is refused with 400 naming the allowed ops', async (_name, send) => {
      const message = await expectError(await send(), 400, 'bad_request');

      for (const op of OPERATIONS) expect(message).toContain(op);
      expect(master.tasks.size).toBe(0);
    });

    it.each([
      ['a form', (body: Buffer) => uploadForm(body)],
      ['a raw body', (body: Buffer) => uploadRaw(body)],
    ])('when %s is exactly MAX_UPLOAD_BYTES, then it is accepted; one byte more is refused with 413', async (_name, send) => {
      expect((await send(png(MAX_UPLOAD_BYTES))).status).toBe(202);

      const message = await expectError(await send(png(MAX_UPLOAD_BYTES + 1)), 413, 'payload_too_large');
      expect(message).toMatch(/limit/);
      expect(master.tasks.size).toBe(1);
    });

    it('when master cannot be reached, then the upload answers 503 and /readyz says not ready', async () => {
      await master.close();

      await expectError(await uploadForm(png()), 503, 'unavailable');
      const ready = await get('/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { master: 'failing' } });

      master = await startFakeMaster(); // so afterEach has a server to close
    });
  });

  describe('GET /image/isReady', () => {
    it('when the image exists, then it answers its state', async () => {
      const task = addTask({ state: 'in_progress' });
      const response = await get(`/image/isReady?id=${task.id}`);

      expect(response.status).toBe(200);
      expect(TaskStatusSchema.parse(await response.json())).toEqual({ id: task.id, state: 'in_progress' });
    });

    it('when the image failed, then the answer carries the reason', async () => {
      const task = addTask({ state: 'failed', error: 'the image does not decode' });
      const response = await get(`/image/isReady?id=${task.id}`);

      expect(await response.json()).toEqual({ id: task.id, state: 'failed', error: 'the image does not decode' });
    });

    it('when the id is unknown, then it answers 404 naming the id', async () => {
      const id = randomUUID();
      const message = await expectError(await get(`/image/isReady?id=${id}`), 404, 'not_found');
      expect(message).toContain(id);
    });

    it.each([['not-a-uuid'], ['']])('when the id is malformed (%p), then it answers 400', async (id) => {
      const message = await expectError(await get(`/image/isReady?id=${id}`), 400, 'bad_request');
      expect(message).toContain('id');
    });
  });

  describe('GET /image/get', () => {
    it('when the image is finished, then it answers the bytes with master’s Content-Type', async () => {
      const result = jpeg(300);
      const task = addTask({ state: 'finished', result: { bytes: result, contentType: 'image/jpeg' } });
      const response = await get(`/image/get?id=${task.id}`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/jpeg');
      expect(Buffer.from(await response.arrayBuffer()).equals(result)).toBe(true);
    });

    it('when master labels a result with a type that is not an image, then it is served with its real type', async () => {
      const task = addTask({ state: 'finished', result: { bytes: png(), contentType: 'text/html' } });
      const response = await get(`/image/get?id=${task.id}`);

      expect(response.headers.get('content-type')).toBe('image/png');
    });

    it('when isReady asks to wait, then the wait is passed on to master, and a wait over 30 s is a 400', async () => {
      const task = addTask({ state: 'finished' });
      const response = await get(`/image/isReady?id=${task.id}&waitMs=1500`);
      expect(response.status).toBe(200);
      expect(master.requests.some((r) => r.path === '/isReady' && r.url.includes('waitMs=1500'))).toBe(true);
      await expectError(await get(`/image/isReady?id=${task.id}&waitMs=30001`), 400, 'bad_request');
    });

    it('when the image is still in progress, then it answers 409 saying the state', async () => {
      const task = addTask({ state: 'in_progress' });
      const message = await expectError(await get(`/image/get?id=${task.id}`), 409, 'conflict');
      expect(message).toContain('in_progress');
    });

    it('when the image failed, then it answers 409 with the reason', async () => {
      const task = addTask({ state: 'failed', error: 'too many pixels' });
      const message = await expectError(await get(`/image/get?id=${task.id}`), 409, 'conflict');
      expect(message).toContain('too many pixels');
    });

    it('when the id is unknown, then it answers 404', async () => {
      await expectError(await get(`/image/get?id=${randomUUID()}`), 404, 'not_found');
    });

    it('when the id is malformed, then it answers 400', async () => {
      await expectError(await get('/image/get?id=../../etc/passwd'), 400, 'bad_request');
    });
  });

  describe('GET / (the upload page)', () => {
    it('serves a form that works without JavaScript, with the field names and every operation', async () => {
      const response = await get('/');
      const html = await response.text();

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(html).toMatch(/<form [^>]*method="post" action="\/newImage" enctype="multipart\/form-data"/);
      expect(html).toMatch(/<label for="image">/);
      expect(html).toContain(
        '<input id="image" type="file" name="image" accept="image/png,image/jpeg,image/bmp,image/gif,image/tiff" required>',
      );
      expect(html).toMatch(/<label for="op">/);
      expect(html).toContain('<select id="op" name="op">');
      // Every operation with what it does (the page escapes the apostrophes of the phrases).
      for (const op of OPERATIONS) {
        const selected = op === 'swap-red-blue' ? ' selected' : '';
        const label = `${op} — ${OPERATION_DESCRIPTIONS[op]}`.replaceAll("'", '&#39;');
        expect(html).toContain(`<option value="${op}"${selected}>${label}</option>`);
      }
      expect(html.match(/<option /g)).toHaveLength(OPERATIONS.length);
      expect(html).toContain('<script src="/app.js" defer></script>');
      expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // no inline script
      expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/); // no inline style or handlers
      expect(html).not.toContain('http-equiv="refresh"');
    });

    it('when ?id= names an image in progress, then the page shows its state and refreshes itself', async () => {
      const task = addTask({ state: 'in_progress' });
      const html = await (await get(`/?id=${task.id}`)).text();

      expect(html).toContain(task.id);
      expect(html).toContain('data-state="in_progress"');
      expect(html).toContain('<noscript><meta http-equiv="refresh" content="1"></noscript>');
      expect(html).toContain('data-poll="true"');
      expect(html).not.toContain('<img');
    });

    it('when ?id= names a finished image, then the page shows the result and a download link and stops refreshing', async () => {
      const task = addTask({ state: 'finished', result: { bytes: png(), contentType: 'image/png' } });
      const html = await (await get(`/?id=${task.id}`)).text();

      expect(html).toContain('data-state="finished"');
      expect(html).toContain(`<img src="/image/get?id=${task.id}" alt="The processed image">`);
      expect(html).toContain(`<a href="/image/get?id=${task.id}" download>`);
      expect(html).not.toContain('http-equiv="refresh"');
      expect(html).not.toContain('data-poll');
    });

    it('when ?id= names a failed image, then the page shows the reason, escaped', async () => {
      const task = addTask({ state: 'failed', error: '<script>alert("x")</script> & more' });
      const html = await (await get(`/?id=${task.id}`)).text();

      expect(html).toContain('data-state="failed"');
      expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more');
      expect(html).not.toContain('<script>alert');
      expect(html).not.toContain('http-equiv="refresh"');
    });

    it('when ?id= is unknown or malformed, then the page says so (escaped) and keeps the form', async () => {
      const unknown = randomUUID();
      const unknownHtml = await (await get(`/?id=${unknown}`)).text();
      expect(unknownHtml).toContain(`There is no image with id ${unknown}`);
      expect(unknownHtml).toContain('name="image"');

      const malformedHtml = await (await get(`/?id=${encodeURIComponent('<b>bold</b>')}`)).text();
      expect(malformedHtml).toContain('&quot;&lt;b&gt;bold&lt;/b&gt;&quot; is not an image id');
      expect(malformedHtml).not.toContain('<b>bold');
    });

    it('serves its script and style as static files with the right types', async () => {
      const script = await get('/app.js');
      expect(script.status).toBe(200);
      expect(script.headers.get('content-type')).toMatch(/javascript/);
      expect(await script.text()).toContain('/image/isReady');

      const style = await get('/style.css');
      expect(style.status).toBe(200);
      expect(style.headers.get('content-type')).toMatch(/^text\/css/);
    });
  });

  it('when master is older than GET /authz (it answers 404 there), then it counts as reachable and the frontend is ready', async () => {
    const paths: string[] = [];
    const oldMaster = await listen(
      express()
        .use((req, _res, next) => {
          paths.push(req.path);
          next();
        })
        .get('/healthz', (_req, res) => void res.json({ status: 'ok', service: 'master' }))
        .use(notFoundHandler())
        .use(errorHandler(createLogger('master', 'silent'))),
      0,
    );
    const onOld = await startFrontend(oldMaster.url);
    try {
      const ready = await fetch(`${onOld.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', service: 'frontend', checks: { master: 'ok' } });
      expect(paths).toEqual(['/authz']);
    } finally {
      await onOld.close();
      await oldMaster.close();
    }
  });

  it('answers health and readiness with master reachable', async () => {
    expect(await (await get('/healthz')).json()).toEqual({ status: 'ok', service: 'frontend' });
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { master: 'ok' } });
  });
});
