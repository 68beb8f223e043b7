import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { detectImageType, type ImageType, type StorageState } from '@pixelmill/contracts';

export const STATE_FOLDERS: readonly StorageState[] = ['inProgress', 'finished'];
const TMP_FOLDER = 'tmp';

async function syncFolder(folder: string): Promise<void> {
  const handle = await fsp.open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface StoredFile {
  bytes: Buffer;
  contentType: ImageType;
}

/**
 * Image bytes on disk: `<root>/inProgress/<key>` and `<root>/finished/<key>`. Each write goes
 * to `<root>/tmp/`, is flushed, then renamed into place, so a crash never leaves half an
 * image under a real name. Keys are validated by the contract (one segment, no dots); the
 * path is checked again here so nothing outside the root is ever touched.
 */
export class FileStore {
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    for (const folder of [...STATE_FOLDERS, TMP_FOLDER]) {
      fs.mkdirSync(path.join(this.root, folder), { recursive: true });
    }
    // Leftovers of writes interrupted by a crash: never visible under a real name, safe to drop.
    for (const name of fs.readdirSync(path.join(this.root, TMP_FOLDER))) {
      fs.rmSync(path.join(this.root, TMP_FOLDER, name), { force: true });
    }
  }

  async put(state: StorageState, key: string, bytes: Buffer): Promise<void> {
    const target = this.pathOf(state, key);
    const temp = path.join(this.root, TMP_FOLDER, `${key}.${randomUUID()}`);
    const handle = await fsp.open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.datasync();
    } catch (err) {
      await handle.close();
      await fsp.rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    await fsp.rename(temp, target);
    // The rename itself is durable only once the folder is flushed.
    await syncFolder(path.dirname(target));
  }

  async get(state: StorageState, key: string): Promise<StoredFile | undefined> {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(this.pathOf(state, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const contentType = detectImageType(bytes);
    if (!contentType) throw new Error(`stored object ${state}/${key} is not an image`);
    return { bytes, contentType };
  }

  async stat(state: StorageState, key: string): Promise<{ size: number; contentType: ImageType } | undefined> {
    let handle;
    try {
      handle = await fsp.open(this.pathOf(state, key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const head = Buffer.alloc(16);
      await handle.read(head, 0, head.length, 0);
      const { size } = await handle.stat();
      const contentType = detectImageType(head);
      if (!contentType) throw new Error(`stored object ${state}/${key} is not an image`);
      return { size, contentType };
    } finally {
      await handle.close();
    }
  }

  /** True when the object existed. */
  async delete(state: StorageState, key: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathOf(state, key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
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
