/**
 * Runs `action` on every item, at most `limit` at once, in their order. The first failure rejects
 * the whole and starts no further item (those under way finish on their own).
 */
export async function forEachBounded<T>(items: readonly T[], limit: number, action: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      try {
        await action(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
