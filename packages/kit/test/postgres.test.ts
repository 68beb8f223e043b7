import { inTransaction, isDatabaseUnavailable, migratePostgres, openPostgres, type Pool } from '../src/postgres';
import { createTestSchema, type TestSchema } from '../src/testing/postgres';

describe('PostgreSQL helpers', () => {
  let db: TestSchema;
  const pools: Pool[] = [];
  const open = async (): Promise<Pool> => {
    const pool = await openPostgres({ url: db.url, schema: db.schema, poolSize: 2 });
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    db = await createTestSchema('kit');
  });
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await db.drop();
  });

  it('when two instances migrate at the same moment, then each migration runs once and both see the tables', async () => {
    const migrations = ['CREATE TABLE things (id INTEGER PRIMARY KEY)', 'ALTER TABLE things ADD COLUMN name TEXT'];
    const [a, b] = [await open(), await open()];
    const applied = await Promise.all([
      migratePostgres(a, db.schema, 'demo', migrations),
      migratePostgres(b, db.schema, 'demo', migrations),
    ]);
    expect(applied.sort()).toEqual([0, 2]);
    await a.query(`INSERT INTO things (id, name) VALUES (1, 'one')`);
    const { rows } = await b.query<{ name: string }>('SELECT name FROM things');
    expect(rows).toEqual([{ name: 'one' }]);
    // The tables are in the run's own schema, found without naming it.
    const where = await a.query<{ table_schema: string }>(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'`);
    expect(where.rows.map((row) => row.table_schema)).toContain(db.schema);
  });

  it('when a migration is added later, then only it runs', async () => {
    const pool = await open();
    const migrations = ['CREATE TABLE later (id INTEGER)', 'CREATE INDEX later_by_id ON later (id)'];
    expect(await migratePostgres(pool, db.schema, 'later', migrations.slice(0, 1))).toBe(1);
    expect(await migratePostgres(pool, db.schema, 'later', migrations)).toBe(1);
    expect(await migratePostgres(pool, db.schema, 'later', migrations)).toBe(0);
  });

  it('when the work in a transaction throws, then nothing of it stays', async () => {
    const pool = await open();
    await pool.query('CREATE TABLE tx_demo (id INTEGER)');
    await expect(
      inTransaction(pool, async (client) => {
        await client.query('INSERT INTO tx_demo VALUES (1)');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await pool.query('SELECT count(*)::int AS n FROM tx_demo')).rows[0]).toEqual({ n: 0 });
  });

  it('when the server cannot be reached, then the error is recognised as the database being unavailable', async () => {
    const pool = await openPostgres({ url: 'postgres://postgres@127.0.0.1:1/test', schema: db.schema, connectTimeoutMs: 1_000 }).catch(
      (err: unknown) => err,
    );
    expect(isDatabaseUnavailable(pool)).toBe(true);
    expect(isDatabaseUnavailable(new Error('syntax error at or near'))).toBe(false);
  });

  it('when a schema name is not a plain SQL name, then it is refused before any SQL runs', async () => {
    await expect(openPostgres({ url: db.url, schema: 'x; DROP TABLE y' })).rejects.toThrow(/lower-case SQL name/);
  });
});
