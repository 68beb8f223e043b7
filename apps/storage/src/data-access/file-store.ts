import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectImageType, type StorageState } from '@pixelmill/contracts';
import { IMAGE_TYPE_BYTES } from '@pixelmill/kit';
import {
  admitObject,
  digestOf,
  ObjectExistsError,
  STATE_FOLDERS,
  type ObjectInfo,
  type ObjectStore,
  type ObjectWriteOptions,
  type OpenedObject,
  type StoredObjectInfo,
} from './object-store';

const TMP_FOLDER = 'tmp';

/** Chunk sizes of object reads and writes: few trips to the thread pool per image, little memory for a big one. */
const READ_CHUNK_BYTES = 256 * 1024;
const WRITE_CHUNK_BYTES = 1024 * 1024;

/** Whether two files hold the same bytes, read a chunk at a time. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [first, second] = await Promise.all([fsp.open(a, 'r'), fsp.open(b, 'r')]);
  try {
    const [sizeA, sizeB] = await Promise.all([first.stat(), second.stat()]);
    if (sizeA.size !== sizeB.size) return false;
    const chunkA = Buffer.alloc(READ_CHUNK_BYTES);
    const chunkB = Buffer.alloc(READ_CHUNK_BYTES);
    for (let position = 0; position < sizeA.size; position += READ_CHUNK_BYTES) {
      const [readA, readB] = await Promise.all([
        first.read(chunkA, 0, READ_CHUNK_BYTES, position),
        second.read(chunkB, 0, READ_CHUNK_BYTES, position),
      ]);
      if (readA.bytesRead !== readB.bytesRead || !chunkA.subarray(0, readA.bytesRead).equals(chunkB.subarray(0, readB.bytesRead))) {
        return false;
      }
    }
    return true;
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
}

/**
 * Image bytes on disk: `<root>/inProgress/<key>` and `<root>/finished/<key>`. Each write goes
 * to `<root>/tmp/`, is flushed, then linked into place, so a crash never leaves half an
 * image under a real name. Objects are written once: a key is never given other bytes, so a
 * late or leaked writer cannot replace what was checked and served (the same bytes again are a
 * success, so a retried write does no harm). Keys are validated by the contract (one segment, no dots); the
 * path is checked again here so nothing outside the root is ever touched.
 */
export class FileStore implements ObjectStore {
  readonly kind = 'folder';
  private readonly root: string;
  /**
   * The state folders stay open: making a link durable is then one fsync, not an open, an
   * fsync and a close (each a trip to libuv's thread pool).
   */
  private readonly folders = new Map<StorageState, number>();

  constructor(root: string) {
    this.root = path.resolve(root);
    for (const folder of [...STATE_FOLDERS, TMP_FOLDER]) {
      fs.mkdirSync(path.join(this.root, folder), { recursive: true });
    }
    for (const state of STATE_FOLDERS) this.folders.set(state, fs.openSync(path.join(this.root, state), 'r'));
    // Leftovers of writes interrupted by a crash: never visible under a real name, safe to drop.
    for (const name of fs.readdirSync(path.join(this.root, TMP_FOLDER))) {
      fs.rmSync(path.join(this.root, TMP_FOLDER, name), { force: true });
    }
  }

  /**
   * Streams bytes into place: into a temp file, checked as they pass (the image type from the
   * first bytes, the size limit on every chunk), flushed, then linked into place (never over an
   * object with other bytes: ObjectExistsError). Memory stays at about WRITE_CHUNK_BYTES
   * whatever the size. A refused or broken stream leaves nothing behind.
   */
  async putStream(state: StorageState, key: string, source: Readable, options: ObjectWriteOptions): Promise<StoredObjectInfo> {
    this.pathOf(state, key); // refuses a key that leaves its folder before a byte is read
    const wantDigest = options.digest ?? false;
    const incoming = await admitObject(source, options, { joinBytes: WRITE_CHUNK_BYTES, hash: wantDigest, head: wantDigest });
    const temp = path.join(this.root, TMP_FOLDER, `${key}.${randomUUID()}`);
    // `flush`: the file is fsync'ed before it is closed, so the link below publishes whole bytes.
    const sink = fs.createWriteStream(temp, { flags: 'wx', flush: true });
    try {
      await pipeline(incoming.body, sink);
    } catch (err) {
      // A failure can come before the file is even open: removed only once the sink has closed,
      // or the temp file would appear after its removal.
      if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
      await fsp.rm(temp, { force: true });
      throw err;
    }
    try {
      await this.publish(temp, state, key);
    } finally {
      await fsp.rm(temp, { force: true });
    }
    return { size: incoming.size(), contentType: incoming.contentType, ...(wantDigest ? { digest: digestOf(incoming) } : {}) };
  }

  /**
   * Puts a flushed temp file under its real name without ever replacing one: a hard link fails
   * when the name exists. The same bytes there already are a success (a retried write).
   */
  private async publish(temp: string, state: StorageState, key: string): Promise<void> {
    const target = this.pathOf(state, key);
    try {
      await fsp.link(temp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await sameBytes(temp, target)) return;
      throw new ObjectExistsError(state, key);
    }
    // The link itself is durable only once the folder is flushed.
    await this.syncFolder(state);
  }

  /**
   * One open file serves the type, the size and the bytes, read in large chunks: a 400 KB image
   * costs two reads, not seven, and no second open.
   */
  async open(state: StorageState, key: string, range?: { start: number; end?: number }): Promise<OpenedObject | undefined> {
    const handle = await this.openExisting(state, key);
    if (!handle) return undefined;
    try {
      const info = await this.describe(handle, state, key);
      const read =
        range && range.start < info.size ? { start: range.start, end: Math.min(range.end ?? info.size - 1, info.size - 1) } : undefined;
      return {
        ...info,
        ...(read ? { range: read } : {}),
        stream: handle.createReadStream({ start: read?.start ?? 0, end: read?.end, highWaterMark: READ_CHUNK_BYTES }),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(state: StorageState, key: string): Promise<ObjectInfo | undefined> {
    const handle = await this.openExisting(state, key);
    if (!handle) return undefined;
    try {
      return await this.describe(handle, state, key);
    } finally {
      await handle.close();
    }
  }

  private async openExisting(state: StorageState, key: string): Promise<fsp.FileHandle | undefined> {
    try {
      return await fsp.open(this.pathOf(state, key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The size and the type (from the first bytes) of an open object. */
  private async describe(handle: fsp.FileHandle, state: StorageState, key: string): Promise<ObjectInfo> {
    const head = Buffer.alloc(IMAGE_TYPE_BYTES);
    await handle.read(head, 0, head.length, 0);
    const { size } = await handle.stat();
    const contentType = detectImageType(head);
    if (!contentType) throw new Error(`stored object ${state}/${key} is not an image`);
    return { size, contentType };
  }

  async delete(state: StorageState, key: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathOf(state, key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  close(): void {
    for (const fd of this.folders.values()) fs.closeSync(fd);
    this.folders.clear();
  }

  /** Flushes a state folder, so that a link into it survives a crash. */
  private syncFolder(state: StorageState): Promise<void> {
    const fd = this.folders.get(state);
    if (fd === undefined) return Promise.reject(new Error('the file store is closed'));
    return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
  }

  async ping(): Promise<void> {
    await fsp.access(path.join(this.root, TMP_FOLDER), fs.constants.W_OK);
  }

  private pathOf(state: StorageState, key: string): string {
    const folder = path.join(this.root, state);
    const target = path.resolve(folder, key);
    if (path.dirname(target) !== folder) throw new Error(`key ${JSON.stringify(key)} leaves its folder`);
    return target;
  }
}
