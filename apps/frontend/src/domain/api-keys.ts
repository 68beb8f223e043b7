import { createHmac } from 'node:crypto';
import { sameSecret } from '@pixelmill/kit';

/**
 * Fixed, public: it only keeps owner ids apart from any other hash of the same key. Every
 * frontend instance must derive the same owner from a key, so there is no per-instance secret.
 */
const OWNER_ID_CONTEXT = 'pixelmill/frontend/owner-id/v1';
/** 32 base64url characters: 192 bits, far from any collision between keys. */
const OWNER_ID_LENGTH = 32;

/**
 * The opaque id of an API key's owner, handed to master instead of the key: a one-way hash,
 * so neither master nor taskdb ever holds a key that would open the frontend.
 */
export function ownerIdOf(key: string): string {
  return createHmac('sha256', OWNER_ID_CONTEXT).update(key, 'utf8').digest('base64url').slice(0, OWNER_ID_LENGTH);
}

/** The API keys the frontend accepts; none means the API is open, as it was before keys. */
export class ApiKeys {
  private readonly entries: ReadonlyArray<{ key: string; owner: string }>;

  constructor(keys: readonly string[]) {
    this.entries = [...new Set(keys)].map((key) => ({ key, owner: ownerIdOf(key) }));
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /**
   * The owner id of the key presented, or undefined when it is none of ours. Every key is
   * compared, in constant time, so the time taken tells nothing about which key came close.
   */
  ownerOf(presented: string): string | undefined {
    let owner: string | undefined;
    for (const entry of this.entries) {
      if (sameSecret(presented, entry.key)) owner = entry.owner;
    }
    return owner;
  }
}
