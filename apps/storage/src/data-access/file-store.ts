import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { detectImageType, type ImageType, type ObjectRef, type StorageState } from '@pixelmill/contracts';
import { forEachBounded, IMAGE_TYPE_BYTES } from '@pixelmill/kit';
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
/** Objects up to this size are read whole in one read (no stream of the file, no reads past the end). */
const WHOLE_READ_BYTES = 1024 * 1024;
/** Unlinks of one `deleteMany` in flight at once: a batch of 1000 does not queue ahead of every other request's file calls. */
const UNLINKS_IN_FLIGHT = 16;

/*
 * The file calls as callbacks made promises: each is one trip to libuv's thread pool, without the
 * FileHandle and stream objects of `fs/promises` and `createWriteStream` around it.
 */
const openFile = promisify(fs.open);
const closeFile = promisify(fs.close);
const fsyncFile = promisify(fs.fsync);
const fstatFile = promisify(fs.fstat);
const linkFile = promisify(fs.link);
const unlinkFile = promisify(fs.unlink);
const writevFile = promisify(fs.writev);

/** Reads `length` bytes at `position` into a new buffer; fewer at the end of the file. */
async function readAt(fd: number, length: number, position: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = await new Promise<number>((resolve, reject) =>
      fs.read(fd, bytes, filled, length - filled, position + filled, (err, count) => (err ? reject(err) : resolve(count))),
    );
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return bytes.subarray(0, filled);
}

/** A stream of bytes read already. */
function streamOfBytes(bytes: Buffer): Readable {
  const stream = new Readable({ read() {} });
  stream.push(bytes);
  stream.push(null);
  return stream;
}

/** Writes the buffers at the file's offset in one call (a gather write, no copy); a short write's rest after. */
async function writeAll(fd: number, buffers: Buffer[], total: number): Promise<void> {
  const { bytesWritten: written } = await writevFile(fd, buffers);
  if (written < total) {
    const rest = Buffer.concat(buffers, total).subarray(written);
    await writeAll(fd, [rest], rest.length);
  }
}

/**
 * Writes a body, checked as it arrives (`admitObject`), into an open file and flushes it: the
 * chunks are gathered and written with one gather write per WRITE_CHUNK_BYTES (no copy), so a
 * 400 KB image is one write and memory stays at about WRITE_CHUNK_BYTES whatever the size.
 */
async function writeObject(fd: number, source: Readable, options: ObjectWriteOptions): Promise<StoredObjectInfo> {
  const wantDigest = options.digest ?? false;
  const incoming = await admitObject(source, options, { hash: wantDigest, head: wantDigest });
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  for await (const chunk of incoming.body as AsyncIterable<Buffer>) {
    gathered.push(chunk);
    gatheredBytes += chunk.length;
    if (gatheredBytes >= WRITE_CHUNK_BYTES) {
      await writeAll(fd, gathered, gatheredBytes);
      gathered = [];
      gatheredBytes = 0;
    }
  }
  if (gatheredBytes > 0) await writeAll(fd, gathered, gatheredBytes);
  // On disk before it is linked into place: a crash never shows half an image under its name.
  await fsyncFile(fd);
  return { size: incoming.size(), contentType: incoming.contentType, ...(wantDigest ? { digest: digestOf(incoming) } : {}) };
}

/** Removes a temp file; one already gone is no failure. */
async function removeTemp(file: string): Promise<void> {
  try {
    await unlinkFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

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
  /** Per state folder: the fsync running, and the one booked after it, which a put may join. */
  private readonly folderSyncs = new Map<StorageState, { running?: Promise<void>; next?: Promise<void> }>();

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
   * object with other bytes: ObjectExistsError). Memory stays at about WRITE_CHUNK_BYTES whatever
   * the size. A refused or broken stream leaves nothing behind.
   */
  async putStream(state: StorageState, key: string, source: Readable, options: ObjectWriteOptions): Promise<StoredObjectInfo> {
    this.pathOf(state, key); // refuses a key that leaves its folder before a byte is read
    const temp = path.join(this.root, TMP_FOLDER, `${key}.${randomUUID()}`);
    // Opened before the body is admitted: from then on the body is read without a pause (no turn
    // of the event loop in which its failure would find no listener). O_EXCL: never a shared name.
    const fd = await openFile(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o666);
    try {
      let stored: StoredObjectInfo;
      try {
        stored = await writeObject(fd, source, options);
      } finally {
        await closeFile(fd);
      }
      await this.publish(temp, state, key);
      return stored;
    } finally {
      await removeTemp(temp);
    }
  }

  /**
   * Puts a flushed temp file under its real name without ever replacing one: a hard link fails
   * when the name exists. The same bytes there already are a success (a retried write).
   */
  private async publish(temp: string, state: StorageState, key: string): Promise<void> {
    const target = this.pathOf(state, key);
    try {
      await linkFile(temp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await sameBytes(temp, target)) return;
      throw new ObjectExistsError(state, key);
    }
    // The link itself is durable only once the folder is flushed.
    await this.syncFolder(state);
  }

  /**
   * One open file serves the type, the size and the bytes. An object up to WHOLE_READ_BYTES is
   * read whole in one read and the file closed at once (open, fstat, read, close: four trips to
   * the thread pool for a 400 KB image); a larger one streams in READ_CHUNK_BYTES reads.
   */
  async open(state: StorageState, key: string, range?: { start: number; end?: number }): Promise<OpenedObject | undefined> {
    const fd = await this.openExisting(state, key);
    if (fd === undefined) return undefined;
    let streaming = false;
    try {
      const { size } = await fstatFile(fd);
      const whole = size <= WHOLE_READ_BYTES ? await readAt(fd, size, 0) : undefined;
      const contentType = this.typeOf(whole ?? (await readAt(fd, IMAGE_TYPE_BYTES, 0)), state, key);
      const read = range && range.start < size ? { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) } : undefined;
      const info = { size, contentType, ...(read ? { range: read } : {}) };
      if (whole) return { ...info, stream: streamOfBytes(read ? whole.subarray(read.start, read.end + 1) : whole) };
      streaming = true;
      // The stream closes the file when it ends or is destroyed.
      return {
        ...info,
        stream: fs.createReadStream('', { fd, start: read?.start ?? 0, end: read?.end, highWaterMark: READ_CHUNK_BYTES }),
      };
    } finally {
      if (!streaming) await closeFile(fd);
    }
  }

  async stat(state: StorageState, key: string): Promise<ObjectInfo | undefined> {
    const fd = await this.openExisting(state, key);
    if (fd === undefined) return undefined;
    try {
      const [head, { size }] = await Promise.all([readAt(fd, IMAGE_TYPE_BYTES, 0), fstatFile(fd)]);
      return { size, contentType: this.typeOf(head, state, key) };
    } finally {
      await closeFile(fd);
    }
  }

  private async openExisting(state: StorageState, key: string): Promise<number | undefined> {
    try {
      return await openFile(this.pathOf(state, key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The type of a stored object, from its first bytes. */
  private typeOf(head: Buffer, state: StorageState, key: string): ImageType {
    const contentType = detectImageType(head.subarray(0, IMAGE_TYPE_BYTES));
    if (!contentType) throw new Error(`stored object ${state}/${key} is not an image`);
    return contentType;
  }

  async delete(state: StorageState, key: string): Promise<boolean> {
    try {
      await unlinkFile(this.pathOf(state, key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async deleteMany(objects: readonly ObjectRef[]): Promise<number> {
    await forEachBounded(objects, UNLINKS_IN_FLIGHT, ({ state, key }) => this.delete(state, key));
    return objects.length;
  }

  close(): void {
    for (const fd of this.folders.values()) fs.closeSync(fd);
    this.folders.clear();
  }

  /**
   * Flushes a state folder, so that a link into it survives a crash. Group commit of the links:
   * one fsync of a folder at a time; the puts that ask while one runs (or, when none runs, within
   * the same turn of the event loop) share the next, which starts after all their links were
   * made, so it covers them all.
   */
  private syncFolder(state: StorageState): Promise<void> {
    const syncs = this.folderSyncs.get(state) ?? {};
    this.folderSyncs.set(state, syncs);
    if (syncs.next) return syncs.next;
    const turnEnded = new Promise<void>((resolve) => setImmediate(resolve));
    const next = (syncs.running ?? turnEnded)
      .catch(() => undefined)
      .then(() => {
        // From here on, a put asking books the sync after this one.
        syncs.next = undefined;
        syncs.running = next;
        const fd = this.folders.get(state);
        if (fd === undefined) throw new Error('the file store is closed');
        return new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
      })
      .finally(() => {
        if (syncs.running === next) syncs.running = undefined;
      });
    syncs.next = next;
    return next;
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
