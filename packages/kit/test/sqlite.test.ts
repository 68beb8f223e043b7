import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqlite } from '../src';

/**
 * kit does not depend on better-sqlite3 (only kv and taskdb do, and they check a real file is in
 * WAL mode); this stand-in records what openSqlite asks of the driver.
 */
class RecordingDriver {
  static opened: RecordingDriver[] = [];
  readonly pragmas: string[] = [];
  constructor(readonly file: string) {
    RecordingDriver.opened.push(this);
  }
  pragma(source: string): unknown {
    this.pragmas.push(source);
    return [];
  }
}

describe('openSqlite', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-sqlite-'));
    RecordingDriver.opened = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('when the folder does not exist, then it is created and the file opened in WAL mode with the pragmas', () => {
    const file = path.join(dir, 'a', 'b', 'data.sqlite');
    const db = openSqlite(RecordingDriver, file, { synchronous: 'NORMAL' });
    expect(fs.statSync(path.dirname(file)).isDirectory()).toBe(true);
    expect(RecordingDriver.opened).toEqual([db]);
    expect(db.file).toBe(file);
    expect(db.pragmas).toEqual(['journal_mode = WAL', 'synchronous = NORMAL', 'busy_timeout = 5000']);
  });

  it('when a busy timeout is given, then it is used', () => {
    const db = openSqlite(RecordingDriver, path.join(dir, 'data.sqlite'), { synchronous: 'FULL', busyTimeoutMs: 250 });
    expect(db.pragmas).toEqual(['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 250']);
  });
});
