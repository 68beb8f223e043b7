import Database from 'better-sqlite3';
import { openSqlite } from '@pixelmill/kit';
import type { KvEntry } from '@pixelmill/contracts';

interface Row {
  key: string;
  value: string;
  updated_at: number;
  expires_at: number | null;
}

const toEntry = (row: Row): KvEntry => ({
  key: row.key,
  value: row.value,
  updatedAt: new Date(row.updated_at).toISOString(),
  expiresAt: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
});

/** Escapes LIKE wildcards so a prefix matches literally. */
const likePrefix = (prefix: string): string => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Keys and values in SQLite (WAL). An entry past its expiry is treated as absent and swept
 * on writes, so a dead service's registration disappears from discovery.
 */
export class KvRepository {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    // NORMAL in WAL mode survives a killed process; only a power loss may drop the last commits.
    this.db = openSqlite(Database, file, { synchronous: 'NORMAL' });
    this.db.exec(`CREATE TABLE IF NOT EXISTS kv (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL,
      expires_at INTEGER
    )`);
    this.statements = {
      upsert: this.db.prepare<[string, string, number, number | null]>(
        `INSERT INTO kv (key, value, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      get: this.db.prepare<[string, number], Row>('SELECT * FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)'),
      delete: this.db.prepare<[string, number]>('DELETE FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)'),
      list: this.db.prepare<[string, number], Row>(
        `SELECT * FROM kv WHERE key LIKE ? ESCAPE '\\' AND (expires_at IS NULL OR expires_at > ?) ORDER BY key`,
      ),
      sweep: this.db.prepare<[number]>('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    };
  }

  set(key: string, value: string, ttlSeconds?: number): KvEntry {
    const now = this.now();
    const expiresAt = ttlSeconds === undefined ? null : now + ttlSeconds * 1000;
    this.statements.sweep.run(now);
    this.statements.upsert.run(key, value, now, expiresAt);
    return toEntry({ key, value, updated_at: now, expires_at: expiresAt });
  }

  get(key: string): KvEntry | undefined {
    const row = this.statements.get.get(key, this.now());
    return row && toEntry(row);
  }

  /** True when the key existed. */
  delete(key: string): boolean {
    return this.statements.delete.run(key, this.now()).changes > 0;
  }

  list(prefix: string): KvEntry[] {
    return this.statements.list.all(likePrefix(prefix), this.now()).map(toEntry);
  }

  ping(): void {
    this.db.prepare('SELECT 1').get();
  }

  close(): void {
    this.db.close();
  }
}
