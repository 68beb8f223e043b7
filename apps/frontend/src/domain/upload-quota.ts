import { AppError } from '@pixelmill/kit';

/** What an owner has stored and may store (master's usage report). */
export interface StoredUsage {
  storedBytes: number;
  /** null: no cap. */
  quotaBytes: number | null;
}

export interface UploadQuotaOptions {
  /** How long a usage report is used before master is asked again; 1 s by default. */
  cacheMs?: number;
  now?: () => number;
}

const formatBytes = (bytes: number): string => (bytes < 1024 * 1024 ? `${bytes} bytes` : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`);

/**
 * The quota as far as it is known before an upload's body is read: an owner that has used its
 * quota up, or whose upload declares more than is left, is refused without reading a byte of it.
 * Master's check when it stores the image is the one that counts (it is atomic); this one spares
 * reading bodies that master would refuse. Usage is asked of master at most once per `cacheMs`
 * and owner, so a burst of uploads costs one question.
 */
export class UploadQuota {
  private readonly cache = new Map<string, { usage: StoredUsage; at: number }>();
  private readonly cacheMs: number;
  private readonly now: () => number;

  constructor(
    private readonly usageOf: (owner?: string) => Promise<StoredUsage>,
    { cacheMs = 1_000, now = Date.now }: UploadQuotaOptions = {},
  ) {
    this.cacheMs = cacheMs;
    this.now = now;
  }

  /** Throws 429 quota_exceeded when `owner` (undefined: the clients without a key) cannot store `bytes` more. */
  async check(owner: string | undefined, bytes: number): Promise<void> {
    const usage = await this.usage(owner);
    if (usage === undefined || usage.quotaBytes === null) return;
    const left = usage.quotaBytes - usage.storedBytes;
    if (left > 0 && bytes <= left) return;
    const state = `the storage quota of ${formatBytes(usage.quotaBytes)} (${formatBytes(usage.storedBytes)} stored)`;
    throw new AppError(
      'quota_exceeded',
      429,
      `${left > 0 ? `this upload of ${formatBytes(bytes)} is more than is left of ${state}` : `${state} is used up`}; ` +
        'images are deleted after the retention time',
    );
  }

  /** Master's report, or undefined when master cannot say: then master's own check decides. */
  private async usage(owner: string | undefined): Promise<StoredUsage | undefined> {
    const entry = owner ?? '';
    const cached = this.cache.get(entry);
    if (cached && this.now() - cached.at < this.cacheMs) return cached.usage;
    try {
      const usage = await this.usageOf(owner);
      // Owners are the configured keys' (or none), so the map stays as small as that list.
      this.cache.set(entry, { usage, at: this.now() });
      return usage;
    } catch {
      return undefined;
    }
  }
}
