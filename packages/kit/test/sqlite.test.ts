import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrateSqlite, openSqlite } from '../src';

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

/** A stand-in that keeps `user_version` and logs what migrateSqlite runs, and in which transaction. */
class MigratingDriver {
  version = 0;
  readonly log: string[] = [];
  pragma(source: string): unknown {
    const set = /^user_version = (\d+)$/.exec(source);
    if (set) this.version = Number(set[1]);
    this.log.push(`pragma ${source}`);
    return [{ user_version: this.version }];
  }
  exec(source: string): void {
    this.log.push(`exec ${source}`);
  }
  transaction(fn: () => void): () => void {
    return () => {
      this.log.push('begin');
      fn();
      this.log.push('commit');
    };
  }
}

describe('migrateSqlite', () => {
  it('when a file has some versions, then the later ones run in order, each in a transaction with its version', () => {
    const db = new MigratingDriver();
    db.version = 1;

    migrateSqlite(db, ['one', 'two', 'three']);

    expect(db.log).toEqual([
      'pragma user_version',
      'begin',
      'exec two',
      'pragma user_version = 2',
      'commit',
      'begin',
      'exec three',
      'pragma user_version = 3',
      'commit',
    ]);
  });

  it('when a file has every version, then nothing runs', () => {
    const db = new MigratingDriver();
    db.version = 2;

    migrateSqlite(db, ['one', 'two']);

    expect(db.log).toEqual(['pragma user_version']);
  });
});
