import { kvContract, type ServiceName } from '@pixelmill/contracts';
import { ContractClient } from './http-client';
import type { Logger } from './logger';
import { AppError } from './errors';

export const SERVICE_KEY_PREFIX = 'services/';
export const serviceKey = (name: ServiceName): string => `${SERVICE_KEY_PREFIX}${name}`;

export interface DiscoveryOptions {
  kvUrl: string;
  /** Fixed addresses that win over kv (a load balancer, a service DNS name). */
  overrides?: Partial<Record<ServiceName, string | undefined>>;
  token?: string;
  timeoutMs?: number;
  /** How long a resolved address is trusted before kv is asked again. */
  cacheMs?: number;
}

/** Finds services through kv, caches their addresses, and forgets one after a connection error. */
export class Discovery {
  readonly kv: ContractClient;
  private readonly cache = new Map<ServiceName, { url: string; until: number }>();

  constructor(private readonly options: DiscoveryOptions) {
    this.kv = new ContractClient({
      service: 'kv',
      baseUrl: options.kvUrl,
      token: options.token,
      timeoutMs: options.timeoutMs ?? 5_000,
    });
  }

  async resolve(name: ServiceName): Promise<string> {
    const override = this.options.overrides?.[name];
    if (override) return override;
    if (name === 'kv') return this.options.kvUrl;
    const cached = this.cache.get(name);
    if (cached && cached.until > Date.now()) return cached.url;
    const result = await this.kv.call(kvContract.get, { params: { key: serviceKey(name) } });
    if (result.status !== 200) {
      throw new AppError('unavailable', 503, `${name} is not registered in kv`);
    }
    this.cache.set(name, { url: result.body.value, until: Date.now() + (this.options.cacheMs ?? 30_000) });
    return result.body.value;
  }

  invalidate(name: ServiceName): void {
    this.cache.delete(name);
  }

  /** A contract client for another service, addressed through discovery. */
  client(name: ServiceName, options: { token?: string; timeoutMs?: number } = {}): ContractClient {
    return new ContractClient({
      service: name,
      baseUrl: () => this.resolve(name),
      token: options.token ?? this.options.token,
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      onUnreachable: () => this.invalidate(name),
    });
  }
}

export interface Registration {
  stop(): Promise<void>;
}

/**
 * Registers a service's address in kv now and renews it periodically, so a restarted kv learns
 * it again. Failures are logged and retried at the next turn; they never stop the service.
 */
export function registerService(
  kv: ContractClient,
  name: ServiceName,
  url: string,
  options: { intervalMs: number; ttlSeconds?: number; logger: Logger },
): Registration {
  // An entry outlives a few missed renewals, then disappears: a dead service leaves discovery.
  const ttlSeconds = options.ttlSeconds ?? Math.max(1, Math.ceil((3 * options.intervalMs) / 1000));
  let stopped = false;
  let registered = false;
  let inFlight: Promise<void> = Promise.resolve();
  const renew = (): void => {
    inFlight = kv
      .call(kvContract.set, {
        params: { key: serviceKey(name) },
        body: { value: url, ttlSeconds },
      })
      .then((result) => {
        if (result.status !== 200) throw new Error(`kv answered ${result.status}`);
        if (!registered) options.logger.info(`registered ${name} at ${url}`);
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
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
