import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as kit from '../src';
import * as testing from '../src/testing';

describe('@pixelmill/kit/testing', () => {
  it('holds the process helpers, which the entry a service loads does not', () => {
    for (const name of ['freePort', 'startServiceProcess', 'waitUntilHealthy']) {
      expect([name, typeof (testing as Record<string, unknown>)[name]]).toEqual([name, 'function']);
      expect([name, name in kit]).toEqual([name, false]);
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(pkg.exports['./testing']).toEqual({ types: './dist/testing/index.d.ts', default: './dist/testing/index.js' });
  });

  it('starts a process in the working folder it is given', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-testing-'));
    try {
      const script = path.join(dir, 'where.js');
      fs.writeFileSync(script, 'console.log(process.cwd());');
      const work = fs.mkdirSync(path.join(dir, 'work'), { recursive: true })!;
      const proc = await testing.startServiceProcess({ name: 'where', script, cwd: work, env: {}, logFile: path.join(dir, 'out.log') });
      while (!proc.exited()) await new Promise((r) => setTimeout(r, 20));
      expect(await proc.stop()).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'out.log'), 'utf8').trim()).toBe(fs.realpathSync(work));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
