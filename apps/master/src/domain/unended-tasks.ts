/** More tasks than a master has waiting at once: past it the oldest is forgotten (and read from taskdb when asked for). */
export const MAX_UNENDED_REMEMBERED = 10_000;

/**
 * The tasks this master created that have not ended as far as it knows, with their owners. Ends
 * reach it from this master's own changes of state and from taskdb's events, so while those
 * events reach master, a waiting isReady for one of these tasks needs no first read of it from
 * taskdb: its end will wake it. A task that may have ended unseen (events lost, the feed down, a
 * task forgotten past the cap) is simply not here, and is read as before.
 */
export class UnendedTasks {
  /** Task id → its owner (null: no API key). */
  private readonly owners = new Map<string, string | null>();

  constructor(private readonly max = MAX_UNENDED_REMEMBERED) {}

  /** Called before the task is created, so that no end can come before it. */
  add(id: string, owner: string | undefined): void {
    this.owners.set(id, owner ?? null);
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.owners.size > this.max) this.owners.delete(this.owners.keys().next().value!);
  }

  /** Whether this owner's task is known not to have ended. */
  has(id: string, owner: string | undefined): boolean {
    return this.owners.get(id) === (owner ?? null);
  }

  /** The task ended, or was never created. */
  delete(id: string): void {
    this.owners.delete(id);
  }

  /** News of ends may have been lost: nothing here can be vouched for any more. */
  clear(): void {
    this.owners.clear();
  }

  get size(): number {
    return this.owners.size;
  }
}
