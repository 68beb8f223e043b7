import { randomBytes } from 'node:crypto';
import { AcceptedSchema, ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { postInTwoParts, waitFor } from '@pixelmill/kit/testing';
import { pngDeclaring as craftedPng } from '@pixelmill/contracts/testing';
import { createApp } from '../../src/app';
import { startFakeMaster, type FakeMaster } from './fake-master';

const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;
const BOUNDARY = 'pixelmill-test-boundary';

const pngDeclaring = (width: number, height: number, size: number): Buffer => Buffer.from(craftedPng(width, height, size));

/** Posts a form in two parts, the second once `beforeRest` resolves. */
const postForm = (url: string, form: Buffer, firstPart = form.length, beforeRest?: () => Promise<void>) =>
  postInTwoParts(`${url}/newImage`, {
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, accept: 'application/json' },
    body: form,
    firstPart,
    beforeRest,
  });

type Part = { field: string; value: string } | { file: string; bytes: Buffer };

/** A multipart form of these parts, in order. */
function formOf(parts: Part[]): Buffer {
  const pieces = parts.map((part) =>
    'value' in part
      ? Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.field}"\r\n\r\n${part.value}\r\n`)
      : Buffer.concat([
          Buffer.from(
            `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.file}"; filename="picture.png"\r\nContent-Type: image/png\r\n\r\n`,
          ),
          part.bytes,
          Buffer.from('\r\n'),
        ]),
  );
  return Buffer.concat([...pieces, Buffer.from(`--${BOUNDARY}--\r\n`)]);
}

describe('frontend, form uploads passed on as they arrive', () => {
  let master: FakeMaster;
  let frontend: Listening;

  beforeEach(async () => {
    master = await startFakeMaster();
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 5000 });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
      imageLimits: { maxPixels: 1_000_000, maxSide: 2_000 },
    });
    frontend = await listen(app, 0);
  });

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  const newImageRequests = () => master.requests.filter((r) => r.path === '/newImage');

  it('when a form sends its op before the image, then master gets the image while it still arrives, and exactly its bytes', async () => {
    const bytes = pngDeclaring(500, 500, 1024 * 1024);
    const form = formOf([
      { field: 'op', value: 'invert' },
      { file: 'image', bytes },
    ]);
    // The rest is held back until master has the request: a frontend that read the whole form first would never send it.
    const answer = await postForm(frontend.url, form, 512 * 1024, () =>
      waitFor(() => newImageRequests().length > 0, 'master to get the image while it still arrives'),
    );
    expect(answer.status).toBe(202);
    const task = master.tasks.get(AcceptedSchema.parse(answer.body).id)!;
    expect(task.bytes.equals(bytes)).toBe(true);
    expect(task).toMatchObject({ op: 'invert', contentType: 'image/png' });
  });

  it('when a form sends its op after the image, then the image is held until the form ends and goes with that op', async () => {
    const bytes = pngDeclaring(50, 50, 10_000);
    const answer = await postForm(
      frontend.url,
      formOf([
        { file: 'image', bytes },
        { field: 'op', value: 'grayscale' },
      ]),
    );
    expect(answer.status).toBe(202);
    const task = master.tasks.get(AcceptedSchema.parse(answer.body).id)!;
    expect(task.bytes.equals(bytes)).toBe(true);
    expect(task.op).toBe('grayscale');
  });

  it('when a form part is not an image, then it is refused with 415 from its first bytes and master never sees it', async () => {
    const answer = await postForm(
      frontend.url,
      formOf([
        { field: 'op', value: 'invert' },
        { file: 'image', bytes: randomBytes(300 * 1024) },
      ]),
    );
    expect(answer.status).toBe(415);
    expect(ErrorBodySchema.parse(answer.body).error.code).toBe('unsupported_media_type');
    expect(newImageRequests()).toEqual([]);
  });

  it('when a form image is over the limit, then it is a 413 and master keeps no task', async () => {
    const answer = await postForm(
      frontend.url,
      formOf([
        { field: 'op', value: 'invert' },
        { file: 'image', bytes: pngDeclaring(500, 500, MAX_UPLOAD_BYTES + 1) },
      ]),
    );
    expect(answer.status).toBe(413);
    expect(ErrorBodySchema.parse(answer.body).error.code).toBe('payload_too_large');
    expect(master.tasks.size).toBe(0);
  });

  it('when a form is refused after its image went on (a second file), then master keeps no task', async () => {
    const bytes = pngDeclaring(50, 50, 200 * 1024);
    const answer = await postForm(
      frontend.url,
      formOf([
        { field: 'op', value: 'invert' },
        { file: 'image', bytes },
        { file: 'other', bytes },
      ]),
    );
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(master.tasks.size).toBe(0);
  });
});
