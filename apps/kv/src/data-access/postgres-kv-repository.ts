import type { KvEntry } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import { isDatabaseUnavailable, migratePostgres, openPostgres, type Pool, type PostgresOptions } from '@pixelmill/kit/postgres';
import type { QueryResultRow } from 'pg';
import { expiryOf, listingBounds, SWEEP_BATCH, toEntry, toPage, type KvPage, type KvPageRequest, type KvRepository } from './kv-repository';

interface Row {
  key: string;
  value: Buffer;
  /** BIGINT: pg hands it over as a string. */
  updated_at: string;
  expires_at: string | null;
}

const rowToEntry = (row: Row): KvEntry =>
  toEntry(row.key, row.value.toString('utf8'), Number(row.updated_at), row.expires_at === null ? null : Number(row.expires_at));

/** Versions of kv's tables, applied in order by `migratePostgres` (recorded in `kv_migrations`). */
const MIGRATIONS: readonly string[] = [
  // Keys collate as bytes ("C") whatever the database's collation: listing ranges and pages then
  // come in the same order as in SQLite, and the primary key index serves `key >= a AND key < b`.
  // Values are bytes of UTF-8: TEXT cannot hold the NUL character a JSON string may carry.
  // Times in ms since the epoch, as in SQLite.
  `CREATE TABLE kv (
     key TEXT COLLATE "C" PRIMARY KEY,
     value BYTEA NOT NULL,
     updated_at BIGINT NOT NULL,
     expires_at BIGINT
   );
   CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL`,
];

const LIVE = '(expires_at IS NULL OR expires_at > $1)';

/**
 * kv in PostgreSQL, for several kv instances sharing one database: everything lives in the
 * table, nothing in the instance. A database out of reach is a 503 `unavailable`; the pool opens
 * new connections once it is back.
 */
export class PostgresKvRepository implements KvRepository {
  constructor(
    private readonly pool: Pool,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a pool on the schema and brings kv's tables up to date. */
  static async open(options: PostgresOptions & { now?: () => number }): Promise<PostgresKvRepository> {
    const pool = await openPostgres(options);
    try {
      await migratePostgres(pool, options.schema, 'kv', MIGRATIONS);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresKvRepository(pool, options.now);
  }

  private async query<R extends QueryResultRow>(sql: string, params: unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    try {
      const result = await this.pool.query<R>(sql, params);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        throw new AppError('unavailable', 503, `the database is out of reach (${(err as Error).message}); try again shortly`);
      }
      throw err;
    }
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<KvEntry> {
    const now = this.now();
    const expiresAt = expiryOf(now, ttlSeconds);
    await this.sweep();
    await this.query(
      `INSERT INTO kv (key, value, updated_at, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      [key, Buffer.from(value, 'utf8'), now, expiresAt],
    );
    return toEntry(key, value, now, expiresAt);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const { rows } = await this.query<Row>(`SELECT * FROM kv WHERE key = $2 AND ${LIVE}`, [this.now(), key]);
    return rows[0] && rowToEntry(rows[0]);
  }

  async delete(key: string): Promise<boolean> {
    const { rowCount } = await this.query(`DELETE FROM kv WHERE key = $2 AND ${LIVE}`, [this.now(), key]);
    return rowCount > 0;
  }

  async list(prefix: string, page: KvPageRequest): Promise<KvPage> {
    // PostgreSQL text cannot hold NUL: no key starts with such a prefix.
    if (prefix.includes('\0')) return { items: [], nextCursor: null };
    const bounds = listingBounds(prefix, page.cursor);
    const range = bounds.map((bound, i) => `key ${bound.op} $${i + 3}`).join(' AND ');
    const { rows } = await this.query<Row>(`SELECT * FROM kv WHERE ${range} AND ${LIVE} ORDER BY key LIMIT $2`, [
      this.now(),
      page.limit + 1,
      ...bounds.map((bound) => bound.value),
    ]);
    return toPage(rows.map(rowToEntry), page.limit);
  }

  async sweep(): Promise<number> {
    // The batch is picked through the expiry index and locked; rows another instance is sweeping
    // (or writing) at the same moment are skipped, not waited for. `= ANY(ARRAY(...))` deletes by
    // primary key, where `IN (...)` might be planned as a join over the whole table.
    const { rowCount } = await this.query(
      `DELETE FROM kv WHERE key = ANY(ARRAY(
         SELECT key FROM kv WHERE expires_at <= $1 ORDER BY expires_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED
       )) AND expires_at <= $1`,
      [this.now()],
    );
    return rowCount;
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1', []);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
