/** Memory taken for one transform; given back once, later calls do nothing. */
export interface MemoryGrant {
  readonly bytes: number;
  release(): void;
}

interface Waiting {
  bytes: number;
  grant: (grant: MemoryGrant) => void;
}

/**
 * The worker's memory for images (WORKER_MEMORY_MB), shared by its loops: a task's transform
 * starts only once its estimated memory fits in what the running ones left. Decoded pixels live
 * outside the threads' heap limits, so this admission is what bounds them. Tasks are admitted first
 * come, first served: a large one is not passed over forever by a stream of small ones.
 */
export class MemoryBudget {
  private free: number;
  private readonly waiting: Waiting[] = [];

  constructor(readonly totalBytes: number) {
    this.free = totalBytes;
  }

  get availableBytes(): number {
    return this.free;
  }

  /** Tasks waiting for memory at this moment. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * `bytes` (at most the total) once they fit and every earlier request was served; undefined
   * when `signal` aborts first.
   */
  take(bytes: number, signal: AbortSignal): Promise<MemoryGrant | undefined> {
    if (bytes > this.totalBytes) {
      return Promise.reject(new RangeError(`${bytes} bytes can never fit in a budget of ${this.totalBytes}`));
    }
    if (signal.aborted) return Promise.resolve(undefined);
    if (this.waiting.length === 0 && bytes <= this.free) {
      this.free -= bytes;
      return Promise.resolve(this.grant(bytes));
    }
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiting);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve(undefined);
        this.admit(); // the ones behind it may fit now
      };
      const waiting: Waiting = {
        bytes,
        grant: (grant) => {
          signal.removeEventListener('abort', onAbort);
          resolve(grant);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiting);
    });
  }

  private grant(bytes: number): MemoryGrant {
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.free += bytes;
        this.admit();
      },
    };
  }

  /** Grants the requests at the head of the queue while they fit. */
  private admit(): void {
    while (this.waiting.length > 0 && this.waiting[0]!.bytes <= this.free) {
      const next = this.waiting.shift()!;
      this.free -= next.bytes;
      next.grant(this.grant(next.bytes));
    }
  }
}
