import { spawnSync } from 'node:child_process';
import path from 'node:path';

// The build of this package (the test task builds it first), run as a service's main.ts would.
const KIT = path.resolve(__dirname, '../dist');

/** Runs `script` in a fresh node with `kit` bound to the built package. */
function runScript(script: string) {
  const result = spawnSync(process.execPath, ['-e', `const kit = require(${JSON.stringify(KIT)});\n${script}`], {
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: result.status, lines: result.stdout.split('\n').filter((line) => line !== ''), stderr: result.stderr };
}

describe('start-up failures', () => {
  it('when main fails, then runMain writes one JSON log line with the stack on stdout and exits 1', () => {
    const result = runScript(`
      const logger = kit.createLogger('demo');
      kit.runMain('demo', async () => {
        logger.info('opening the database');
        throw new Error('the data folder is not writable');
      });
    `);

    expect(result.status).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.lines).toHaveLength(2);
    const lines = result.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ level: 'info', message: 'opening the database', service: 'demo' });
    expect(lines[1]).toMatchObject({
      level: 'error',
      message: 'demo failed to start: the data folder is not writable',
      service: 'demo',
      stack: expect.stringContaining('Error: the data folder is not writable\n    at '),
      timestamp: expect.any(String),
    });
  });

  it('when variables have bad values, then loadConfigOrExit writes one JSON log line naming each and exits 1', () => {
    const result = runScript(`
      const schema = kit.ServerEnvSchema.extend({ PORT: kit.PortSchema });
      kit.loadConfigOrExit('demo', schema, { PORT: '99999', LOG_LEVEL: 'loud' });
      console.log('not reached');
    `);

    expect(result.status).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.lines).toHaveLength(1);
    const line = JSON.parse(result.lines[0]!) as { level: string; service: string; message: string; problems: string[] };
    expect(line).toMatchObject({ level: 'error', service: 'demo' });
    expect(line.problems).toHaveLength(2);
    expect(line.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^PORT: /), expect.stringMatching(/^LOG_LEVEL: /)]));
    expect(line.message).toBe(`invalid configuration: ${line.problems.join('; ')}`);
  });
});
