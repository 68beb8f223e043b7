import type { Request, Router } from 'express';
import { kvContract } from '@pixelmill/contracts';
import { AppError, bearerToken, mountContract, sameSecret, SERVICE_KEY_PREFIX, type ServiceTokens } from '@pixelmill/kit';
import type { KvRepository } from '../data-access/kv-repository';

export function mountKvRoutes(router: Router, repository: KvRepository, tokens: ServiceTokens): void {
  // Workers may read service addresses with their own token, and nothing else: discovery works
  // for a remote worker that holds no internal credential.
  const workerReadsAddress = (req: Request): boolean => {
    const presented = bearerToken(req);
    const key = String(req.params.key ?? '');
    return (
      tokens.worker !== undefined &&
      presented !== undefined &&
      sameSecret(presented, tokens.worker) &&
      key.startsWith(SERVICE_KEY_PREFIX) &&
      !key.includes('..')
    );
  };
  const missing = (key: string) => new AppError('not_found', 404, `no key "${key}"`);
  mountContract(
    router,
    kvContract,
    {
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
    },
    { tokens, grants: { get: workerReadsAddress } },
  );
}
