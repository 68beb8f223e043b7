import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { freePort } from '@pixelmill/kit/testing';
import { S3RVER_CREDENTIALS, startS3rver } from '../object-backends';

const main = path.resolve(__dirname, '../../dist/main.js');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('storage as a process on an S3 bucket', () => {
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  let raw: S3Client;

  beforeAll(async () => {
    s3 = await startS3rver();
    raw = s3.client();
  });
  afterAll(async () => {
    raw.destroy();
    await s3.stop();
  });

  it('when started with S3_BUCKET, then it keeps the objects in the bucket, writes nothing on stderr, and stops cleanly', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        KV_URL: `http://127.0.0.1:${await freePort()}`,
        REGISTER_INTERVAL_MS: '60000',
        S3_BUCKET: 'pixelmill-process',
        S3_ENDPOINT: s3.endpoint,
        S3_CREATE_BUCKET: 'true',
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const url = `http://127.0.0.1:${port}`;
      for (;;) {
        const ready = await fetch(`${url}/readyz`).catch(() => undefined);
        if (ready?.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const bytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(520 * 1024, 5)]);

      const put = await fetch(`${url}/objects/finished/from-process`, {
        method: 'POST',
        body: bytes,
        headers: { 'content-type': 'image/jpeg' },
      });

      expect(put.status).toBe(201);
      const inBucket = await raw.send(new GetObjectCommand({ Bucket: 'pixelmill-process', Key: 'finished/from-process' }));
      expect(sha256(await inBucket.Body!.transformToByteArray())).toBe(sha256(bytes));
      expect(inBucket.ContentType).toBe('image/jpeg');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
