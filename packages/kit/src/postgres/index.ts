// PostgreSQL for the stores that outgrow one machine (`@pixelmill/kit/postgres`): a pool whose
// connections work in one schema, and versioned migrations safe when several instances start at
// once. A subpath, so that services without a database never load `pg`.
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { z } from 'zod';

/** A schema name used unquoted in SQL: lower-case letters, digits and underscores, as PostgreSQL folds them. */
export const SchemaNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL name: letters, digits and _, at most 63 characters');

/** Environment of a store that keeps its state in PostgreSQL when `DATABASE_URL` is set. */
export const DatabaseEnvSchema = z.object({
  /** postgres://user:password@host:port/database; unset: the embedded SQLite file. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
  /** The schema the tables live in, so several stacks or test runs can share one database. */
  DATABASE_SCHEMA: SchemaNameSchema.default('pixelmill'),
  /** Connections each instance may hold. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
});
export type DatabaseEnv = z.output<typeof DatabaseEnvSchema>;

export interface PostgresOptions {
  url: string;
  schema: string;
  poolSize?: number;
  /** Time to wait for a connection (from the server or the pool) before a query fails. */
  connectTimeoutMs?: number;
  /** Upper bound of one statement, so a stuck query cannot hold a request forever. */
  statementTimeoutMs?: number;
}

/**
 * A pool whose every connection has `search_path` set to the schema (created if missing), so
 * queries name tables without a schema. An idle connection's error (the server restarted) is
 * absorbed: the pool drops that client and the next query opens a new one.
 */
export async function openPostgres(options: PostgresOptions): Promise<Pool> {
  const schema = SchemaNameSchema.parse(options.schema);
  const config: PoolConfig = {
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    options: `-c search_path=${schema}`,
  };
  const pool = new Pool(config);
  pool.on('error', () => undefined);
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (err) {
    // Two instances creating the schema at the same moment: the loser sees a unique violation.
    if ((err as { code?: string }).code !== '23505') {
      await pool.end();
      throw err;
    }
  }
  return pool;
}

/** A 64-bit advisory lock key for a name, the same in every process. */
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`;

/**
 * Applies the migrations not applied yet, in order, each in its own transaction, recorded in
 * `<store>_migrations`. An advisory lock per schema and store makes a second instance starting at
 * the same moment wait, then find them applied.
 */
export async function migratePostgres(pool: Pool, schema: string, store: string, migrations: readonly string[]): Promise<number> {
  const table = `${store}_migrations`;
  const client = await pool.connect();
  let applied = 0;
  try {
    await client.query('BEGIN');
    await client.query(LOCK_SQL, [`pixelmill:${schema}:${store}`]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${table}`);
    for (let next = rows[0]?.version ?? 0; next < migrations.length; next += 1) {
      await client.query(migrations[next]!);
      await client.query(`INSERT INTO ${table} (version) VALUES ($1)`, [next + 1]);
      applied += 1;
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Runs `fn` in one transaction on one connection of the pool; rolled back if it throws. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Error codes that mean the database is out of reach (connection refused or lost, server shutting
 * down, too many connections): a service answers 503 for these and recovers by itself.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') {
    const message = (err as { message?: unknown } | null)?.message;
    return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect/i.test(message);
  }
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code) ||
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now
    code === '53300' // too_many_connections
  );
}

export type { Pool, PoolClient } from 'pg';
