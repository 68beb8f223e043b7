import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { StorageState } from '@pixelmill/contracts';
import S3rver from 's3rver';
import { FileStore } from '../src/data-access/file-store';
import type { ObjectStore } from '../src/data-access/object-store';
import { createS3Client, S3ObjectStore } from '../src/data-access/s3-object-store';

/** The places an object store keeps its bytes; every behaviour is tested on each. */
export const BACKENDS = ['folder', 's3'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** s3rver's fixed credentials. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** An S3 server of the test's own: s3rver on a free port and a temp folder. */
export async function startS3rver(): Promise<{ endpoint: string; client(): S3Client; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory: dir, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    client: () => createS3Client({ endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS }),
    stop: async () => {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One empty folder or bucket, looked at past the store as well as through it. */
export interface ObjectPlace {
  /** A new store over this place: another instance, or the same one restarted. */
  store(): ObjectStore;
  /** Everything that lies there: `<state>/<key>` (and leftovers, `tmp/<name>` in a folder). */
  list(): Promise<string[]>;
  /** The bytes stored under a key, read past the store; undefined when there are none. */
  read(state: StorageState, key: string): Promise<Buffer | undefined>;
  /** Puts bytes there past the store, as another instance would have. */
  write(state: StorageState, key: string, bytes: Buffer, contentType: string): Promise<void>;
  /** Closes its stores and removes what it holds. */
  dispose(): Promise<void>;
}

export interface ObjectBackend {
  name: BackendName;
  place(): Promise<ObjectPlace>;
  stop(): Promise<void>;
}

async function folderBackend(): Promise<ObjectBackend> {
  return {
    name: 'folder',
    place: async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-storage-'));
      const stores: ObjectStore[] = [];
      const file = (state: StorageState, key: string) => path.join(dir, state, key);
      return {
        store: () => {
          const store = new FileStore(dir);
          stores.push(store);
          return store;
        },
        list: async () =>
          ['inProgress', 'finished', 'tmp']
            .filter((folder) => fs.existsSync(path.join(dir, folder)))
            .flatMap((folder) => fs.readdirSync(path.join(dir, folder)).map((name) => `${folder}/${name}`))
            .sort(),
        read: async (state, key) => (fs.existsSync(file(state, key)) ? fs.readFileSync(file(state, key)) : undefined),
        write: async (state, key, bytes) => {
          fs.mkdirSync(path.join(dir, state), { recursive: true });
          fs.writeFileSync(file(state, key), bytes);
        },
        dispose: async () => {
          for (const store of stores.splice(0)) store.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    stop: async () => {},
  };
}

/** A bucket per place, on an S3 server of the test's own. */
async function s3Backend(): Promise<ObjectBackend> {
  const server = await startS3rver();
  const raw = server.client();
  return {
    name: 's3',
    place: async () => {
      const bucket = `pixelmill-${randomUUID()}`;
      await raw.send(new CreateBucketCommand({ Bucket: bucket }));
      const stores: ObjectStore[] = [];
      const read = async (state: StorageState, key: string): Promise<Buffer | undefined> => {
        try {
          const answer = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `${state}/${key}` }));
          return Buffer.from(await answer.Body!.transformToByteArray());
        } catch (err) {
          if ((err as Error).name === 'NoSuchKey') return undefined;
          throw err;
        }
      };
      return {
        store: () => {
          const store = new S3ObjectStore({ client: server.client(), bucket });
          stores.push(store);
          return store;
        },
        list: async () => {
          const answer = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
          return (answer.Contents ?? []).map((object) => object.Key!).sort();
        },
        read,
        write: async (state, key, bytes, contentType) => {
          await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${state}/${key}`, Body: bytes, ContentType: contentType }));
        },
        dispose: async () => {
          for (const store of stores.splice(0)) store.close();
        },
      };
    },
    stop: async () => {
      raw.destroy();
      await server.stop();
    },
  };
}

export const startBackend = (name: BackendName): Promise<ObjectBackend> => (name === 'folder' ? folderBackend() : s3Backend());
