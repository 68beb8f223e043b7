import type Database from 'better-sqlite3';

interface PendingWrite {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * One SQLite connection shared by the whole process, with group commit. A commit with
 * `synchronous = FULL` waits for the disk (an fsync of the WAL), and better-sqlite3 waits on the
 * event loop: while one commit waits, nothing else is answered. So the writes asked for within
 * one turn of the event loop share one transaction and one commit: each runs in a savepoint of
 * its own (a write that throws undoes only its own changes and fails only its own caller), and
 * every caller is answered after the commit, so whatever is answered is on disk. Reads run at
 * once and see committed rows only.
 *
 * `exclusive` runs jobs that span several turns (an async transaction) alone, in order with the
 * groups: nothing else runs inside their transaction or reads what they have not committed.
 */
export class SqliteGroupCommit {
  private pending: PendingWrite[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private committed = 0;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
  }

  /** Transactions committed so far (each one a group of writes, or an exclusive job's). */
  get commits(): number {
    return this.committed;
  }

  /**
   * Runs `write` in the transaction of the group gathered in this turn of the event loop, in a
   * savepoint of its own; resolves with its result once the group is committed.
   */
  write<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ write, resolve: resolve as (value: unknown) => void, reject });
      // The first write of a group books its turn; the ones that follow join it until it starts.
      if (this.pending.length === 1) void this.exclusive(() => this.commitGroup());
    });
  }

  /** A read of committed rows: at once, unless an exclusive job's transaction is open, then after it. */
  read<T>(read: () => T): Promise<T> {
    if (this.db.inTransaction) return this.exclusive(read);
    try {
      return Promise.resolve(read());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Runs `job` alone, after every group and job booked before it. */
  exclusive<T>(job: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Counts a commit made by an exclusive job. */
  countCommit(): void {
    this.committed += 1;
  }

  /** Waits for the rest of this turn (its requests' writes join the group), then commits the group. */
  private async commitGroup(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const group = this.pending;
    this.pending = [];
    const outcomes = this.runGroup(group);
    group.forEach((pending, index) => {
      const outcome = outcomes[index]!;
      if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  }

  /** The outcome of each write of the group, once its transaction has committed (or failed). */
  private runGroup(group: PendingWrite[]): Outcome[] {
    const outcomes: Outcome[] = [];
    /** The writes in the open transaction that succeeded: undone too should SQLite roll it back. */
    let inTransaction: number[] = [];
    const failOpenTransaction = (error: unknown): void => {
      for (const index of inTransaction) outcomes[index] = { ok: false, error };
      inTransaction = [];
    };
    for (let index = 0; index < group.length; index += 1) {
      if (!this.db.inTransaction) {
        try {
          this.begin.run();
        } catch (error) {
          outcomes[index] = { ok: false, error };
          continue;
        }
      }
      try {
        // Inside the open transaction better-sqlite3 makes this a savepoint.
        outcomes[index] = { ok: true, value: this.db.transaction(group[index]!.write)() };
        inTransaction.push(index);
      } catch (error) {
        outcomes[index] = { ok: false, error };
        // Some errors (a full disk, an I/O error) make SQLite roll back the whole transaction.
        if (!this.db.inTransaction) failOpenTransaction(error);
      }
    }
    if (this.db.inTransaction) {
      try {
        this.commit.run();
        this.committed += 1;
      } catch (error) {
        try {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
        } finally {
          failOpenTransaction(error);
        }
      }
    }
    return outcomes;
  }
}
