import { spawnSync } from 'node:child_process';
import path from 'node:path';

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
});
