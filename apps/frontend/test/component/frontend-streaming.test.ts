import { randomBytes } from 'node:crypto';
import { AcceptedSchema, ErrorBodySchema } from '@pixelmill/contracts';
import { createLogger, Discovery, listen, type Listening } from '@pixelmill/kit';
import { postInTwoParts, waitFor } from '@pixelmill/kit/testing';
import { pngDeclaring as craftedPng } from '@pixelmill/contracts/testing';
import { createApp } from '../../src/app';
import { startFakeMaster, type FakeMaster } from './fake-master';

const STREAM_FROM_BYTES = 1024;
const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;

const pngDeclaring = (width: number, height: number, size: number): Buffer => Buffer.from(craftedPng(width, height, size));

/** A raw upload in two parts: the second only once `beforeRest` resolves. */
const upload = (url: string, bytes: Buffer, firstPart: number, beforeRest?: () => Promise<void>) =>
  postInTwoParts(`${url}/newImage`, {
    headers: { 'content-type': 'image/png', accept: 'application/json' },
    body: bytes,
    firstPart,
    beforeRest,
  });

describe('frontend, large raw uploads', () => {
  let master: FakeMaster;
  let frontend: Listening;

  beforeEach(async () => {
    master = await startFakeMaster();
    const discovery = new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 2000 });
    const app = createApp({
      master: discovery.client('master'),
      logger: createLogger('frontend', 'silent'),
      maxUploadBytes: MAX_UPLOAD_BYTES,
      streamUploadsFromBytes: STREAM_FROM_BYTES,
      imageLimits: { maxPixels: 1_000_000, maxSide: 2_000 },
    });
    frontend = await listen(app, 0);
  });

  afterEach(async () => {
    await frontend.close();
    await master.close();
  });

  it('when an upload is larger than the streaming threshold, then master gets its bytes before the client has sent them all', async () => {
    const bytes = pngDeclaring(500, 500, 1024 * 1024);
    // The second half is held back until master has the request: a frontend that read the whole body first would never send it.
    const answer = await upload(frontend.url, bytes, 512 * 1024, () =>
      waitFor(() => master.requests.some((r) => r.path === '/newImage'), 'master to get the upload while it still arrives'),
    );
    expect(answer.status).toBe(202);
    const { id } = AcceptedSchema.parse(answer.body);
    const task = master.tasks.get(id)!;
    expect(task.bytes.equals(bytes)).toBe(true);
    expect(task.contentType).toBe('image/png');
  });

  it('when a large upload is not an image, then it is refused with 415 from its first bytes and master never sees it', async () => {
    const bytes = randomBytes(600 * 1024);
    const answer = await upload(frontend.url, bytes, bytes.length);
    expect(answer.status).toBe(415);
    expect(ErrorBodySchema.parse(answer.body).error.code).toBe('unsupported_media_type');
    expect(master.requests.filter((r) => r.path === '/newImage')).toEqual([]);
  });

  it('when a large upload declares too many pixels, then it is refused with 413 and master never sees it', async () => {
    const bytes = pngDeclaring(5_000, 5_000, 300 * 1024);
    const answer = await upload(frontend.url, bytes, bytes.length);
    expect(answer.status).toBe(413);
    expect(ErrorBodySchema.parse(answer.body).error.message).toMatch(/declares 5,000×5,000 pixels/);
    expect(master.requests.filter((r) => r.path === '/newImage')).toEqual([]);
  });

  it('when master loses its answer to a streamed upload, then the upload is not sent twice and the client gets a 503', async () => {
    master.loseNextAnswer = true;
    const bytes = pngDeclaring(500, 500, 200 * 1024);
    const answer = await upload(frontend.url, bytes, bytes.length);
    expect(answer.status).toBe(503);
    expect(master.newImageCalls).toHaveLength(1);
  });

  it('when an upload is below the threshold, then it is read whole and a lost answer is asked for again', async () => {
    master.loseNextAnswer = true;
    const bytes = pngDeclaring(10, 10, 1000);
    const answer = await upload(frontend.url, bytes, bytes.length);
    expect(answer.status).toBe(202);
    expect(master.newImageCalls).toHaveLength(2);
    expect(master.tasks.size).toBe(1);
  });

  it("when a client sends a streamed upload slower than the calls to master may take, then it still goes through, within the streamed uploads' own time", async () => {
    const slowClientApp = (streamedUploadTimeoutMs?: number) =>
      createApp({
        // Calls to master time out after 300 ms.
        master: new Discovery({ kvUrl: 'http://127.0.0.1:9', overrides: { master: master.url }, timeoutMs: 300 }).client('master'),
        logger: createLogger('frontend', 'silent'),
        maxUploadBytes: MAX_UPLOAD_BYTES,
        streamUploadsFromBytes: STREAM_FROM_BYTES,
        imageLimits: { maxPixels: 1_000_000, maxSide: 2_000 },
        streamedUploadTimeoutMs,
      });
    const bytes = pngDeclaring(500, 500, 200 * 1024);
    const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 600));
    const [patient, impatient] = await Promise.all([listen(slowClientApp(10_000), 0), listen(slowClientApp(), 0)]);
    try {
      expect((await upload(patient.url, bytes, 150 * 1024, pause)).status).toBe(202);
      expect((await upload(impatient.url, bytes, 150 * 1024, pause)).status).toBe(503);
    } finally {
      await Promise.all([patient.close(), impatient.close()]);
    }
  });
});
