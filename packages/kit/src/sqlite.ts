import fs from 'node:fs';
import path from 'node:path';

/** What `openSqlite` needs of a connection; better-sqlite3's `Database` has it. */
export interface SqlitePragmas {
  pragma(source: string): unknown;
}

export interface SqliteOptions {
  /**
   * FULL: a commit is on disk before it returns, so it survives even a power loss. NORMAL: in WAL
   * mode still safe when the process is killed, but a power loss may undo the last commits; it
   * saves an fsync per commit.
   */
  synchronous: 'FULL' | 'NORMAL';
  /** How long a statement waits for another connection's lock before it fails (default 5 s). */
  busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens a SQLite file the way every pixelmill database is opened: its folder created, WAL (readers
 * never block the writer), the given `synchronous`, and a busy timeout instead of SQLITE_BUSY at
 * once. Takes the driver's constructor (better-sqlite3's `Database`) rather than importing it, so
 * that kit, which every service loads, does not depend on a native module only kv and taskdb use.
 */
export function openSqlite<D extends SqlitePragmas>(Driver: new (file: string) => D, file: string, options: SqliteOptions): D {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Driver(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous}`);
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
  return db;
}

/** What `migrateSqlite` needs of a connection; better-sqlite3's `Database` has it. */
export interface SqliteMigratable extends SqlitePragmas {
  exec(source: string): unknown;
  transaction(fn: () => void): () => void;
}

/**
 * Applies the schema versions a file does not have yet, in order, each in its own transaction,
 * recorded in `PRAGMA user_version`; a file written by an older version is brought up to date.
 */
export function migrateSqlite(db: SqliteMigratable, migrations: readonly string[]): void {
  const [{ user_version: version }] = db.pragma('user_version') as [{ user_version: number }];
  for (let next = version; next < migrations.length; next += 1) {
    db.transaction(() => {
      db.exec(migrations[next]!);
      db.pragma(`user_version = ${next + 1}`);
    })();
  }
}
