/** The right to claim one task; given back once, later calls do nothing. */
export interface Slot {
  release(): void;
}

/**
 * The transform threads not yet promised to a task. A loop takes a slot before it asks master
 * for work and gives it back when its task no longer needs a thread of its own, so that the
 * worker claims no task that it could not start at once. Loops wait their turn first come,
 * first served.
 */
export class FreeSlots {
  private readonly waiting: Array<(slot: Slot) => void> = [];

  constructor(private free: number) {}

  get available(): number {
    return this.free;
  }

  /** A slot once one is free; undefined when `signal` aborts first. */
  take(signal: AbortSignal): Promise<Slot | undefined> {
    if (signal.aborted) return Promise.resolve(undefined);
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve(this.slot());
    }
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve(undefined);
      };
      const grant = (slot: Slot): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(slot);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  private slot(): Slot {
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const next = this.waiting.shift();
        if (next) next(this.slot());
        else this.free += 1;
      },
    };
  }
}
