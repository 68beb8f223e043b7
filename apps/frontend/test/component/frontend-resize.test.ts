import { AcceptedSchema, ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { postInTwoParts, waitFor } from '@pixelmill/kit/testing';
import { pngDeclaring as craftedPng } from '@pixelmill/contracts/testing';
import { createApp } from '../../src/app';
import { startFakeMaster, type FakeMaster } from './fake-master';

const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;
const BOUNDARY = 'pixelmill-resize-boundary';

const pngDeclaring = (width: number, height: number, size = 2_000): Buffer => Buffer.from(craftedPng(width, height, size));

type Part = { field: string; value: string } | { file: string; bytes: Buffer };

/** A multipart form of these parts, in this order. */
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

describe("frontend, resize's width and height", () => {
  let master: FakeMaster;
  let frontend: Listening;

  beforeEach(async () => {
    master = await startFakeMaster();
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 5000 });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
    });
    frontend = await listen(app, 0);
  });

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  const newImageRequests = () => master.requests.filter((r) => r.path === '/newImage');

  /** Posts a form in two parts, the second once `beforeRest` resolves. */
  const postForm = (parts: Part[], firstPart?: number, beforeRest?: () => Promise<void>) => {
    const body = formOf(parts);
    return postInTwoParts(`${frontend.url}/newImage`, {
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, accept: 'application/json' },
      body,
      firstPart: firstPart ?? body.length,
      beforeRest,
    });
  };

  const uploadRaw = (query: string, bytes = pngDeclaring(1600, 1200)) =>
    fetch(`${frontend.url}/newImage?${query}`, {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { 'content-type': 'image/png', accept: 'application/json' },
    });

  const taskOf = (body: unknown) => master.tasks.get(AcceptedSchema.parse(body).id)!;

  it('when a raw upload asks for resize with width and height in the query, then master gets them with the image', async () => {
    const response = await uploadRaw('op=resize&width=800&height=600');
    expect(response.status).toBe(202);
    expect(taskOf(await response.json())).toMatchObject({ op: 'resize', params: { width: 800, height: 600 } });
    expect(newImageRequests()[0]!.url).toMatch(/[?&]width=800&height=600/);
  });

  it('when a form sends op=resize and a width before the image, then the image goes on as it arrives, with the width', async () => {
    const bytes = pngDeclaring(800, 600, 1024 * 1024);
    const answer = await postForm(
      [
        { field: 'op', value: 'resize' },
        { field: 'width', value: '400' },
        { field: 'height', value: '' },
        { file: 'image', bytes },
      ],
      512 * 1024,
      () => waitFor(() => newImageRequests().length > 0, 'master to get the image while it still arrives'),
    );
    expect(answer.status).toBe(202);
    const task = taskOf(answer.body);
    expect(task).toMatchObject({ op: 'resize', params: { width: 400 } });
    expect(task.bytes.equals(bytes)).toBe(true);
  });

  it('when a form sends op=resize before the image and its width after it, then the image is held until the form ends and goes with the width', async () => {
    const bytes = pngDeclaring(80, 60, 10_000);
    const answer = await postForm([
      { field: 'op', value: 'resize' },
      { file: 'image', bytes },
      { field: 'width', value: '40' },
    ]);
    expect(answer.status).toBe(202);
    expect(taskOf(answer.body)).toMatchObject({ op: 'resize', params: { width: 40 } });
  });

  it('when a form sends the other operations with empty width and height fields (a browser sends every input), then they count as absent', async () => {
    const answer = await postForm([
      { field: 'op', value: 'invert' },
      { field: 'width', value: '' },
      { field: 'height', value: '' },
      { file: 'image', bytes: pngDeclaring(8, 8) },
    ]);
    expect(answer.status).toBe(202);
    expect(taskOf(answer.body)).toMatchObject({ op: 'invert', params: {} });
  });

  it('when a field after an image that went on would change what it asks for, then it is a 400 and master keeps no task', async () => {
    const answer = await postForm([
      { field: 'op', value: 'resize' },
      { field: 'width', value: '40' },
      { file: 'image', bytes: pngDeclaring(80, 60, 200 * 1024) },
      { field: 'height', value: '10' },
    ]);
    expect(answer.status).toBe(400);
    expect(ErrorBodySchema.parse(answer.body).error.message).toBe(
      'the fields op, width and height must all come before the image in the form',
    );
    // The image went on, but its end never did: master cannot have made a task of it.
    expect(newImageRequests()).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(master.tasks.size).toBe(0);
  });

  it.each<[string, Part[], RegExp]>([
    [
      'a width with another operation',
      [
        { field: 'op', value: 'grayscale' },
        { field: 'width', value: '10' },
      ],
      /^width goes with op=resize only, not with op=grayscale$/,
    ],
    ['resize without a side', [{ field: 'op', value: 'resize' }], /^op=resize needs width, height or both/],
    [
      'a side of 0',
      [
        { field: 'op', value: 'resize' },
        { field: 'height', value: '0' },
      ],
      /^height "0": must be a whole number of pixels from 1 to 8192$/,
    ],
    [
      'a side kept from the aspect ratio past the bound',
      [
        { field: 'op', value: 'resize' },
        { field: 'width', value: '100' },
      ],
      /makes 100×10000, more than 8192 pixels a side$/,
    ],
  ])('when a form asks for %s, then it is a 400 that says so, and master never sees the image', async (_what, fields, message) => {
    const answer = await postForm([...fields, { file: 'image', bytes: pngDeclaring(10, 1000, 100 * 1024) }]);
    expect(answer.status).toBe(400);
    expect(ErrorBodySchema.parse(answer.body).error.message).toMatch(message);
    expect(newImageRequests()).toEqual([]);
  });

  it.each([
    ['resize without a side', 'op=resize', /^op=resize needs width, height or both/],
    ['a height with another operation', 'op=invert&height=5', /^height goes with op=resize only, not with op=invert$/],
    ['a width with no op (the default takes none)', 'width=5', /^width goes with op=resize only, not with op=swap-red-blue$/],
    ['a side of 0', 'op=resize&width=0', /query\.width: must be a whole number of pixels from 1 to 8192/],
    ['a side that is not a number', 'op=resize&height=tall', /query\.height: must be a whole number of pixels from 1 to 8192/],
    ['a side past the bound', 'op=resize&width=8193', /query\.width: must be a whole number of pixels from 1 to 8192/],
    ['a negative side', 'op=resize&width=-1', /query\.width: must be a whole number/],
    ['too many pixels', 'op=resize&width=8000&height=8000', /resize to 8000×8000 makes 64,000,000 pixels, more than 50,000,000/],
  ])('when a raw upload asks for %s, then it is a 400 that says so, and master never sees it', async (_what, query, message) => {
    const response = await uploadRaw(query);
    expect(response.status).toBe(400);
    expect(ErrorBodySchema.parse(await response.json()).error.message).toMatch(message);
    expect(newImageRequests()).toEqual([]);
  });
});
