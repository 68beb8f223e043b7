import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestSchema } from '@pixelmill/kit/testing';
import type { KvRepository } from '../../src/data-access/kv-repository';
import { PostgresKvRepository } from '../../src/data-access/postgres-kv-repository';
import { SqliteKvRepository } from '../../src/data-access/sqlite-kv-repository';

/** One store of a backend, empty when made: repositories opened on it share its data, as kv instances would. */
export interface KvStore {
  open(now?: () => number): Promise<KvRepository>;
  /** Closes every repository opened on it and deletes its data. */
  destroy(): Promise<void>;
}

export interface KvBackend {
  name: string;
  createStore(): Promise<KvStore>;
}

/** Tracks the repositories a store opened, so a test that fails midway still closes them. */
function storeOf(open: (now?: () => number) => Promise<KvRepository>, remove: () => Promise<void>): KvStore {
  const opened: KvRepository[] = [];
  return {
    async open(now) {
      const repository = await open(now);
      opened.push(repository);
      return repository;
    },
    async destroy() {
      // Settled, not all: a repository the test closed itself may refuse to close twice.
      await Promise.allSettled(opened.map((repository) => repository.close()));
      await remove();
    },
  };
}

export const SQLITE: KvBackend = {
  name: 'SQLite',
  async createStore() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-kv-'));
    return storeOf(
      async (now) => new SqliteKvRepository(path.join(dir, 'kv.sqlite'), now),
      async () => fs.rmSync(dir, { recursive: true, force: true }),
    );
  },
};

export const POSTGRES: KvBackend = {
  name: 'PostgreSQL',
  async createStore() {
    const schema = await createTestSchema('kv');
    return storeOf(
      (now) => PostgresKvRepository.open({ url: schema.url, schema: schema.schema, poolSize: 2, now }),
      () => schema.drop(),
    );
  },
};

export const BACKENDS = [SQLITE, POSTGRES];
