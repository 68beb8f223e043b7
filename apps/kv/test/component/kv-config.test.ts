import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { kvContract } from '@pixelmill/contracts';
import { ContractClient } from '@pixelmill/kit';
import { createTestSchema, freePort, startServiceProcess, type ServiceProcess, type TestSchema } from '@pixelmill/kit/testing';

const main = path.resolve(__dirname, '../../dist/main.js');

/** Runs the built kv with `env` and gives its exit code and the log lines it wrote on stdout, parsed. */
function startKv(env: Record<string, string>) {
  const result = spawnSync(process.execPath, [main], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 10_000 });
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  return { status: result.status, stderr: result.stderr, logs: lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('kv start-up', () => {
  it('when a variable has a bad value, then the process exits 1 with one JSON log line naming it', () => {
    const result = startKv({ PORT: '99999', DATA_DIR: '/nonexistent/never-created' });

    expect(result.status).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.logs).toEqual([expect.objectContaining({ level: 'error', service: 'kv', problems: [expect.stringMatching(/^PORT: /)] })]);
  });

  it('when start-up fails, then the process exits 1 with one JSON log line carrying the stack', () => {
    // A file where the data folder should be: the database cannot be opened.
    const result = startKv({ PORT: '0', DATA_DIR: __filename });

    expect(result.status).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.logs.at(-1)).toMatchObject({
      level: 'error',
      service: 'kv',
      message: expect.stringMatching(/^kv failed to start: /),
      stack: expect.stringContaining('\n    at '),
    });
  });

  it('when DATABASE_URL names a database that cannot be reached, then the process exits 1 with one JSON log line saying why', async () => {
    const closed = await freePort();
    const result = startKv({ PORT: '0', DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/test` });

    expect(result.status).toBe(1);
    expect(result.logs.at(-1)).toMatchObject({
      level: 'error',
      service: 'kv',
      message: expect.stringMatching(/^kv failed to start: .*ECONNREFUSED/),
    });
  });
});

describe('kv processes on PostgreSQL', () => {
  const INTERNAL = 'internal-token-0123456789';
  let schema: TestSchema;
  const running: ServiceProcess[] = [];

  beforeEach(async () => {
    schema = await createTestSchema('kv');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((kv) => kv.stop()));
    await schema.drop();
  });

  it('when two kv processes start at once on one DATABASE_URL and schema, then both serve the same entries', async () => {
    const start = async (name: string) => {
      const port = await freePort();
      const env = {
        PATH: process.env.PATH,
        LOG_LEVEL: 'warn',
        PORT: String(port),
        INTERNAL_TOKEN: INTERNAL,
        DATABASE_URL: schema.url,
        DATABASE_SCHEMA: schema.schema,
      };
      const kv = await startServiceProcess({ name, script: main, env, port, cwd: path.dirname(main) });
      running.push(kv);
      return { url: kv.url!, client: new ContractClient({ service: 'kv', baseUrl: kv.url!, token: INTERNAL }) };
    };
    // Started together: their migrations meet, and the advisory lock lets one apply them.
    const [kv1, kv2] = await Promise.all([start('kv-1'), start('kv-2')]);
    const [first, second] = [kv1.client, kv2.client];

    expect((await first.call(kvContract.set, { params: { key: 'config/op' }, body: { value: 'invert' } })).status).toBe(200);

    expect(await second.call(kvContract.get, { params: { key: 'config/op' } })).toMatchObject({ status: 200, body: { value: 'invert' } });
    // Each registers itself under services/kv/<instance>, in the one table they share.
    const registered = async () => {
      const listed = await second.call(kvContract.list, { query: { prefix: 'services/kv/' } });
      return listed.status === 200 ? listed.body.items.map((item) => item.value).sort() : [];
    };
    const deadline = Date.now() + 15_000;
    while ((await registered()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await registered()).toEqual([kv1.url, kv2.url].sort());
  });
});
