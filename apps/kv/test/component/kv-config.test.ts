import { spawnSync } from 'node:child_process';
import path from 'node:path';

describe('kv start-up', () => {
  it('when a variable has a bad value, then the process exits 1 with a message naming it', () => {
    const main = path.resolve(__dirname, '../../dist/main.js');
    const result = spawnSync(process.execPath, [main], {
      env: { PATH: process.env.PATH, PORT: '99999', DATA_DIR: '/nonexistent/never-created' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('PORT');
    expect(result.stderr).not.toContain('    at ');
  });
});
