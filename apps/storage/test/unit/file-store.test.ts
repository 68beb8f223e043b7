import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { StorageState } from '@pixelmill/contracts';
import { FileStore } from '../../src/data-access/file-store';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const image = (size: number, seed: number): Buffer => Buffer.concat([PNG_SIGNATURE, Buffer.alloc(size, seed)]);
const writeOptions = { maxBytes: 1024 * 1024, check: () => 'image/png' as const };
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('the file store', () => {
  let dir: string;
  let store: FileStore;
  /** The store's flush of a state folder, that makes the links into it durable. */
  let syncFolder: (state: StorageState) => Promise<void>;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-storage-'));
    store = new FileStore(dir);
    syncFolder = (store as unknown as { syncFolder(state: StorageState): Promise<void> }).syncFolder.bind(store);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when folder flushes are asked for in one turn, or while one runs, then they share one fsync', async () => {
    // Folder fsyncs only: the objects' own go through another reference to fsync.
    const fsyncs = jest.spyOn(fs, 'fsync');

    await Promise.all(Array.from({ length: 6 }, () => syncFolder('finished')));
    expect(fsyncs).toHaveBeenCalledTimes(1);

    const running = syncFolder('finished');
    await nextTurn(); // its fsync has started
    expect(fsyncs).toHaveBeenCalledTimes(2);
    await Promise.all([running, ...Array.from({ length: 4 }, () => syncFolder('finished'))]);
    expect(fsyncs).toHaveBeenCalledTimes(3);

    // Each folder is flushed on its own.
    await Promise.all([syncFolder('finished'), syncFolder('inProgress')]);
    expect(fsyncs).toHaveBeenCalledTimes(5);
  });

  it('when puts end together, then each object is in place and no temp file is left', async () => {
    const bytes = Array.from({ length: 6 }, (_, k) => image(50_000, k));

    await Promise.all(bytes.map((b, k) => store.putStream('finished', `o${k}`, Readable.from([b]), writeOptions)));

    for (const [k, b] of bytes.entries()) expect(fs.readFileSync(path.join(dir, 'finished', `o${k}`)).equals(b)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
  });
});
