import type { Router } from 'express';
import { kvContract } from '@pixelmill/contracts';
import { AppError, mountContract } from '@pixelmill/kit';
import type { KvRepository } from '../data-access/kv-repository';

export function mountKvRoutes(router: Router, repository: KvRepository): void {
  const missing = (key: string) => new AppError('not_found', 404, `no key "${key}"`);
  mountContract(router, kvContract, {
    set: ({ params, body }) => ({ status: 200, body: repository.set(params.key, body.value, body.ttlSeconds) }),
    get: ({ params }) => {
      const entry = repository.get(params.key);
      if (!entry) throw missing(params.key);
      return { status: 200, body: entry };
    },
    delete: ({ params }) => {
      if (!repository.delete(params.key)) throw missing(params.key);
      return { status: 204, body: undefined };
    },
    list: ({ query }) => ({ status: 200, body: { items: repository.list(query.prefix) } }),
  });
}
