import { randomBytes } from 'node:crypto';
import { MAX_TASK_EVENTS, type TaskEvent, type TaskEvents } from '@pixelmill/contracts';

/** Where events go once a change is committed: the hub itself, or a bus that feeds every instance's hub. */
export interface TaskEventPublisher {
  publish(event: TaskEvent): void;
}

export interface TaskEventHubOptions {
  /** Events kept for callers that come back late; one further behind is answered `reset`. */
  capacity?: number;
  /** This process's name in its cursors; random by default, so a restarted taskdb never honours an old cursor. */
  instance?: string;
}

/** One slot of the ring: an event, or a gap where events may have been lost (a reconnect). */
interface Entry {
  seq: number;
  event?: TaskEvent;
}

/**
 * The recent task events of this taskdb instance, for masters' long polls (GET /events). Each
 * event gets the next sequence number; a cursor `<instance>:<seq>` names the last one a caller
 * saw. The last `capacity` events are kept in a ring: a caller who comes back within them gets
 * what it missed, one further behind (or with another instance's cursor, or from before a gap)
 * gets `reset: true`, and rechecks whatever it waits for.
 */
export class TaskEventHub implements TaskEventPublisher {
  readonly instance: string;
  private readonly capacity: number;
  private readonly ring: Entry[] = [];
  /** Where the next entry goes once the ring is full. */
  private oldest = 0;
  private seq = 0;
  /** The last gap's sequence number: a cursor before it may have missed events. */
  private gapSeq = 0;
  private readonly waiters = new Set<() => void>();
  private shutDown = false;

  constructor(options: TaskEventHubOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? MAX_TASK_EVENTS);
    this.instance = options.instance ?? randomBytes(6).toString('hex');
  }

  publish(event: TaskEvent): void {
    this.append({ seq: ++this.seq, event });
  }

  /** Events may have been lost here (the feed from the other instances broke): every poller is answered `reset` once. */
  gap(): void {
    this.gapSeq = ++this.seq;
    this.append({ seq: this.seq });
  }

  /**
   * Shutdown: the polls waiting end now, and later ones at once, so that closing the server does
   * not wait out long polls.
   */
  close(): void {
    this.shutDown = true;
    this.wakeAll();
  }

  get closed(): boolean {
    return this.shutDown;
  }

  /** The cursor of what has happened so far. */
  get cursor(): string {
    return `${this.instance}:${this.seq}`;
  }

  /**
   * The events after `after`: at once when there are any (or when the cursor cannot be served,
   * `reset`), else as soon as one comes, within `waitMs`; with nothing, an empty answer at the
   * end of the wait or when `signal` aborts. Without a cursor, the current one at once.
   */
  async wait(after: string | undefined, waitMs: number, signal?: AbortSignal): Promise<TaskEvents> {
    if (after === undefined) return { cursor: this.cursor, events: [], reset: false };
    const seen = this.seqOf(after);
    if (seen === undefined || seen > this.seq) return this.reset();
    if (seen === this.seq && waitMs > 0 && !signal?.aborted && !this.closed) await this.nextEntry(waitMs, signal);
    return this.since(seen);
  }

  /** How many polls wait for an event. */
  get waiting(): number {
    return this.waiters.size;
  }

  private since(seen: number): TaskEvents {
    if (seen < this.gapSeq) return this.reset();
    const entries = this.entriesAfter(seen);
    if (entries === undefined) return this.reset();
    const sent = entries.slice(0, MAX_TASK_EVENTS);
    const last = sent.length === 0 ? seen : sent[sent.length - 1]!.seq;
    return { cursor: `${this.instance}:${last}`, events: sent.map((entry) => entry.event!), reset: false };
  }

  /** The entries after `seen`, oldest first; undefined when some of them have left the ring. */
  private entriesAfter(seen: number): Entry[] | undefined {
    const count = this.seq - seen;
    if (count === 0) return [];
    if (count > this.ring.length) return undefined;
    const entries: Entry[] = [];
    // The newest entry sits just before `oldest` once the ring is full, at the end before.
    const newest = (this.oldest - 1 + this.ring.length) % this.ring.length;
    for (let back = count - 1; back >= 0; back -= 1) {
      entries.push(this.ring[(newest - back + this.ring.length) % this.ring.length]!);
    }
    return entries;
  }

  private reset(): TaskEvents {
    return { cursor: this.cursor, events: [], reset: true };
  }

  private append(entry: Entry): void {
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else {
      this.ring[this.oldest] = entry;
      this.oldest = (this.oldest + 1) % this.capacity;
    }
    this.wakeAll();
  }

  private wakeAll(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiting) wake();
  }

  /** Resolves at the next entry, at `waitMs`, or when `signal` aborts, whichever comes first. */
  private nextEntry(waitMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** The sequence number in a cursor of this instance; undefined for anything else. */
  private seqOf(cursor: string): number | undefined {
    const separator = cursor.lastIndexOf(':');
    if (separator < 0 || cursor.slice(0, separator) !== this.instance) return undefined;
    const text = cursor.slice(separator + 1);
    return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  }
}
