import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The PostgreSQL of every development machine and CI (trust auth, database `test`); `TEST_DATABASE_URL` overrides it. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  url: string;
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/**
 * A schema of its own for one test run (`t_<prefix>_<random>`), created now, so runs that share
 * the database never see each other's tables. Drop it when the run ends.
 */
export async function createTestSchema(prefix = 'run'): Promise<TestSchema> {
  const schema = `t_${prefix.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  return {
    url: TEST_DATABASE_URL,
    schema,
    async drop() {
      const client = new Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
