import { createHash } from 'node:crypto';
import { kvContract, type ServiceName } from '@pixelmill/contracts';
import { ContractClient } from './http-client';
import type { Logger } from './logger';
import { AppError } from './errors';

export const SERVICE_KEY_PREFIX = 'services/';
/** Where the instances of a service register, one key each below it: `services/<name>/`. */
export const servicePrefix = (name: ServiceName): string => `${SERVICE_KEY_PREFIX}${name}/`;
/** The key of one instance: `services/<name>/<instance>`. */
export const instanceKey = (name: ServiceName, instance: string): string => `${servicePrefix(name)}${instance}`;

/** An instance's name from its advertised URL: the same URL gives the same name, so a restart takes its key back. */
export const instanceIdOf = (url: string): string => createHash('sha256').update(url.replace(/\/+$/, '')).digest('hex').slice(0, 16);

export interface DiscoveryOptions {
  kvUrl: string;
  /** Fixed addresses that win over kv (a load balancer, a service DNS name). */
  overrides?: Partial<Record<ServiceName, string | undefined>>;
  token?: string;
  timeoutMs?: number;
  /** How long a service's list of instances is used before kv is asked again (in the background). */
  cacheMs?: number;
  /** How long an instance that could not be reached is skipped. */
  unreachableMs?: number;
}

const DEFAULT_CACHE_MS = 5_000;
const DEFAULT_UNREACHABLE_MS = 10_000;
/** Instances of one service read from kv: its largest page. */
const MAX_INSTANCES = 1_000;

/** What kv listed for one service, and when. */
interface Listing {
  urls: string[];
  readAt: number;
  /** Set by a connection error: kv is asked again before the next pick (a restarted instance may have moved). */
  stale: boolean;
}

/**
 * Finds the instances of each service through kv (every key under `services/<name>/`) and
 * spreads calls over them in turn. An instance that could not be reached is skipped for a
 * while; an expired registration leaves the list at its next read. An override wins.
 */
export class Discovery {
  readonly kv: ContractClient;
  private readonly listings = new Map<ServiceName, Listing>();
  private readonly reads = new Map<ServiceName, Promise<Listing>>();
  /** Instance URL → until when it is skipped. */
  private readonly unreachable = new Map<string, number>();
  /** Each service's turn for round robin; a random start spreads the clients that start together. */
  private readonly turns = new Map<ServiceName, number>();

  constructor(private readonly options: DiscoveryOptions) {
    this.kv = new ContractClient({
      service: 'kv',
      baseUrl: options.kvUrl,
      token: options.token,
      timeoutMs: options.timeoutMs ?? 5_000,
    });
  }

  /** One live instance of a service, each in turn. */
  async resolve(name: ServiceName): Promise<string> {
    const live = await this.instances(name);
    const turn = this.turns.get(name) ?? Math.floor(Math.random() * 1_000);
    this.turns.set(name, turn + 1);
    return live[turn % live.length]!;
  }

  /**
   * The instances of a service calls go to: its override, or those kv lists less the ones
   * skipped after a connection error; when every listed one was skipped, all of them (they are
   * all there is). A 503 when none is registered.
   */
  async instances(name: ServiceName): Promise<string[]> {
    const fixed = this.fixedUrl(name);
    if (fixed !== undefined) return [fixed];
    let listing = this.listings.get(name);
    if (listing === undefined || listing.stale) listing = await this.read(name);
    else if (Date.now() - listing.readAt >= (this.options.cacheMs ?? DEFAULT_CACHE_MS)) {
      // Calls go on with the list in hand; the next ones get kv's answer.
      this.read(name).catch(() => undefined);
    }
    const now = Date.now();
    const live = listing.urls.filter((url) => (this.unreachable.get(url) ?? 0) <= now);
    return live.length > 0 ? live : listing.urls;
  }

  /** Skips an instance for a while and reads kv again before the next pick. */
  markUnreachable(name: ServiceName, url: string): void {
    if (this.fixedUrl(name) !== undefined) return;
    const now = Date.now();
    for (const [known, until] of this.unreachable) if (until <= now) this.unreachable.delete(known);
    this.unreachable.set(url, now + (this.options.unreachableMs ?? DEFAULT_UNREACHABLE_MS));
    const listing = this.listings.get(name);
    if (listing) listing.stale = true;
  }

  /** A contract client for another service, spread over its instances through discovery. */
  client(name: ServiceName, options: { token?: string; timeoutMs?: number } = {}): ContractClient {
    return new ContractClient({
      service: name,
      baseUrl: () => this.resolve(name),
      token: options.token ?? this.options.token,
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      onUnreachable: (url) => {
        if (url !== undefined) this.markUnreachable(name, url);
      },
    });
  }

  private fixedUrl(name: ServiceName): string | undefined {
    return this.options.overrides?.[name] || (name === 'kv' ? this.options.kvUrl : undefined);
  }

  /** Reads a service's instances from kv, one read at a time; while kv cannot answer, the last list stays. */
  private read(name: ServiceName): Promise<Listing> {
    const pending = this.reads.get(name);
    if (pending) return pending;
    const read = this.list(name)
      .then(
        (urls) => {
          if (urls.length === 0) {
            this.listings.delete(name);
            throw new AppError('unavailable', 503, `${name} is not registered in kv`);
          }
          const listing = { urls, readAt: Date.now(), stale: false };
          this.listings.set(name, listing);
          return listing;
        },
        (err: unknown) => {
          const known = this.listings.get(name);
          if (known === undefined) throw err;
          Object.assign(known, { readAt: Date.now(), stale: false });
          return known;
        },
      )
      .finally(() => this.reads.delete(name));
    this.reads.set(name, read);
    return read;
  }

  private async list(name: ServiceName): Promise<string[]> {
    // One page: a service has far fewer instances than a page holds.
    const result = await this.kv.call(kvContract.list, { query: { prefix: servicePrefix(name), limit: MAX_INSTANCES } });
    if (result.status !== 200) throw new AppError('unavailable', 503, `kv answered ${result.status} to a list of ${name}`);
    // Two keys may hold the same URL for a moment (INSTANCE_ID set after a restart): one instance.
    return [...new Set(result.body.items.map((item) => item.value))];
  }
}

export interface Registration {
  /** The instance's key in kv. */
  readonly key: string;
  /** Stops renewing and deletes the key, so clients stop picking this instance at their next read. */
  stop(): Promise<void>;
}

/** How long an instance waits for kv to delete its key at shutdown, before it goes on closing. */
const UNREGISTER_TIMEOUT_MS = 2_000;

/**
 * Registers an instance's address in kv under `services/<name>/<instance>` now and renews it
 * periodically, so a restarted kv learns it again. Failures are logged and retried at the next
 * turn; they never stop the service.
 */
export function registerService(
  kv: ContractClient,
  name: ServiceName,
  url: string,
  options: { intervalMs: number; ttlSeconds?: number; logger: Logger; instance?: string },
): Registration {
  const key = instanceKey(name, options.instance ?? instanceIdOf(url));
  // An entry outlives a few missed renewals, then disappears: a dead instance leaves discovery.
  const ttlSeconds = options.ttlSeconds ?? Math.max(1, Math.ceil((3 * options.intervalMs) / 1000));
  let stopped = false;
  let registered = false;
  let inFlight: Promise<void> = Promise.resolve();
  const renew = (): void => {
    inFlight = kv
      .call(kvContract.set, { params: { key }, body: { value: url, ttlSeconds } })
      .then((result) => {
        if (result.status !== 200) throw new Error(`kv answered ${result.status}`);
        if (!registered) options.logger.info(`registered ${name} at ${url} as ${key}`);
        registered = true;
      })
      .catch((err: unknown) => {
        if (!stopped) options.logger.warn(`could not register ${name} in kv: ${(err as Error).message}`);
        registered = false;
      });
  };
  renew();
  const timer = setInterval(renew, options.intervalMs);
  timer.unref();
  return {
    key,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      const result = await kv
        .call(kvContract.delete, { params: { key }, timeoutMs: UNREGISTER_TIMEOUT_MS, retry: false })
        .catch((err: unknown) => err as Error);
      // 404: the key had expired already. Otherwise the TTL removes it in time.
      if (result instanceof Error) options.logger.warn(`could not unregister ${name} from kv: ${result.message}`);
    },
  };
}
