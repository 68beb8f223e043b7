import Database from 'better-sqlite3';
import { migrateSqlite, openSqlite } from '@pixelmill/kit';
import type { KvEntry } from '@pixelmill/contracts';
import { expiryOf, listingBounds, SWEEP_BATCH, toEntry, toPage, type KvPage, type KvPageRequest, type KvRepository } from './kv-repository';

interface Row {
  key: string;
  value: string;
  updated_at: number;
  expires_at: number | null;
}

const rowToEntry = (row: Row): KvEntry => toEntry(row.key, row.value, row.updated_at, row.expires_at);

/**
 * Schema versions, applied in order and recorded in `PRAGMA user_version`, so a database written
 * by an older kv (the table alone, version 0) is brought up to date when kv starts.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS kv (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at INTEGER NOT NULL,
     expires_at INTEGER
   )`,
  // The sweep finds expired entries through it instead of reading the whole table.
  'CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL',
];

const LIVE = '(expires_at IS NULL OR expires_at > @now)';

/** kv in one SQLite file (WAL), for one machine. Keys compare as bytes (SQLite's BINARY collation). */
export class SqliteKvRepository implements KvRepository {
  private readonly db: Database.Database;
  private readonly statements;
  /** Listing statements by their bounds (at most four shapes). */
  private readonly listings = new Map<string, Database.Statement<Record<string, unknown>, Row>>();

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    // NORMAL in WAL mode survives a killed process; only a power loss may drop the last commits.
    this.db = openSqlite(Database, file, { synchronous: 'NORMAL' });
    migrateSqlite(this.db, MIGRATIONS);
    this.statements = {
      upsert: this.db.prepare<[string, string, number, number | null]>(
        `INSERT INTO kv (key, value, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      get: this.db.prepare<{ key: string; now: number }, Row>(`SELECT * FROM kv WHERE key = @key AND ${LIVE}`),
      delete: this.db.prepare<{ key: string; now: number }>(`DELETE FROM kv WHERE key = @key AND ${LIVE}`),
      sweep: this.db.prepare<{ now: number }>(
        `DELETE FROM kv WHERE key IN (
           SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= @now ORDER BY expires_at LIMIT ${SWEEP_BATCH}
         )`,
      ),
      ping: this.db.prepare('SELECT 1'),
    };
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<KvEntry> {
    const now = this.now();
    const expiresAt = expiryOf(now, ttlSeconds);
    this.db.transaction(() => {
      this.statements.sweep.run({ now });
      this.statements.upsert.run(key, value, now, expiresAt);
    })();
    return toEntry(key, value, now, expiresAt);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const row = this.statements.get.get({ key, now: this.now() });
    return row && rowToEntry(row);
  }

  async delete(key: string): Promise<boolean> {
    return this.statements.delete.run({ key, now: this.now() }).changes > 0;
  }

  async list(prefix: string, page: KvPageRequest): Promise<KvPage> {
    const bounds = listingBounds(prefix, page.cursor);
    const shape = bounds.map((bound) => bound.op).join(' ');
    let statement = this.listings.get(shape);
    if (!statement) {
      const range = bounds.map((bound, i) => `key ${bound.op} @b${i}`).join(' AND ');
      statement = this.db.prepare<Record<string, unknown>, Row>(`SELECT * FROM kv WHERE ${range} AND ${LIVE} ORDER BY key LIMIT @limit`);
      this.listings.set(shape, statement);
    }
    const params: Record<string, unknown> = { now: this.now(), limit: page.limit + 1 };
    bounds.forEach((bound, i) => (params[`b${i}`] = bound.value));
    return toPage(statement.all(params).map(rowToEntry), page.limit);
  }

  async sweep(): Promise<number> {
    return this.statements.sweep.run({ now: this.now() }).changes;
  }

  async ping(): Promise<void> {
    this.statements.ping.get();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
