import type { KvEntry } from '@pixelmill/contracts';

/** A page of a listing: entries in key order, and the key the next page starts after (null on the last page). */
export interface KvPage {
  items: KvEntry[];
  nextCursor: string | null;
}

export interface KvPageRequest {
  limit: number;
  /** The `nextCursor` of the previous page: only keys after it. */
  cursor?: string;
}

/**
 * Keys and values, each with an optional expiry. An entry past its expiry is treated as absent
 * everywhere, so a dead service's registration disappears from discovery; writes sweep expired
 * entries away a batch at a time. Keys compare by code point (bytes of UTF-8) in both backends,
 * so pages come in the same order whichever one runs.
 */
export interface KvRepository {
  set(key: string, value: string, ttlSeconds?: number): Promise<KvEntry>;
  get(key: string): Promise<KvEntry | undefined>;
  /** True when the key existed (and had not expired). */
  delete(key: string): Promise<boolean>;
  /** Entries whose key starts with `prefix` literally, a page at a time. */
  list(prefix: string, page: KvPageRequest): Promise<KvPage>;
  /** Deletes up to `SWEEP_BATCH` expired entries; gives how many it deleted. */
  sweep(): Promise<number>;
  /** Resolves when the store answers a query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Expired entries one write sweeps. Every entry that can expire was put there by a write, and
 * each write sweeps up to this many (more than one): the expired entries never pile up, and no
 * write pays for more than a batch.
 */
export const SWEEP_BATCH = 100;

/** A key bound of a listing: `key <op> value`. */
export interface KeyBound {
  op: '>=' | '<' | '>';
  value: string;
}

/**
 * The smallest string after every string that starts with `prefix`, in code point order; undefined
 * when there is none (the empty prefix, or one made only of the last code point).
 */
function prefixSuccessor(prefix: string): string | undefined {
  const codePoints = [...prefix];
  while (codePoints.length > 0) {
    const last = codePoints.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Surrogate code points never occur in UTF-8 text: the next one after them is U+E000.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return codePoints.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/**
 * The key range of a listing page, as bounds on the primary key: keys starting with `prefix`
 * (`prefix <= key < successor`, so wildcards of LIKE mean nothing and the index serves the
 * range), after the cursor.
 */
export function listingBounds(prefix: string, cursor?: string): KeyBound[] {
  const bounds: KeyBound[] = [{ op: '>=', value: prefix }];
  const end = prefixSuccessor(prefix);
  if (end !== undefined) bounds.push({ op: '<', value: end });
  if (cursor !== undefined) bounds.push({ op: '>', value: cursor });
  return bounds;
}

/** The page of `entries`, fetched with a limit one above the page's: the extra row says a next page exists. */
export function toPage(entries: KvEntry[], limit: number): KvPage {
  if (entries.length <= limit) return { items: entries, nextCursor: null };
  const items = entries.slice(0, limit);
  return { items, nextCursor: items[items.length - 1]!.key };
}

export const toEntry = (key: string, value: string, updatedAt: number, expiresAt: number | null): KvEntry => ({
  key,
  value,
  updatedAt: new Date(updatedAt).toISOString(),
  expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
});

/** When an entry set now with `ttlSeconds` expires, in ms since the epoch; null when it never does. */
export const expiryOf = (now: number, ttlSeconds: number | undefined): number | null =>
  ttlSeconds === undefined ? null : now + ttlSeconds * 1000;
