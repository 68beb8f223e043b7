import type { Request, Router } from 'express';
import { kvContract } from '@pixelmill/contracts';
import { AppError, bearerToken, mountContract, sameSecret, SERVICE_KEY_PREFIX, type ServiceTokens } from '@pixelmill/kit';
import type { KvRepository } from '../data-access/kv-repository';

export function mountKvRoutes(router: Router, repository: KvRepository, tokens: ServiceTokens): void {
  // Workers may read service addresses with their own token, and nothing else: discovery works
  // for a remote worker that holds no internal credential.
  const workerReads = (req: Request, keyOrPrefix: unknown): boolean => {
    const presented = bearerToken(req);
    return (
      tokens.worker !== undefined &&
      presented !== undefined &&
      sameSecret(presented, tokens.worker) &&
      typeof keyOrPrefix === 'string' &&
      keyOrPrefix.startsWith(SERVICE_KEY_PREFIX) &&
      !keyOrPrefix.includes('..')
    );
  };
  const missing = (key: string) => new AppError('not_found', 404, `no key "${key}"`);
  mountContract(
    router,
    kvContract,
    {
      set: async ({ params, body }) => ({ status: 200, body: await repository.set(params.key, body.value, body.ttlSeconds) }),
      get: async ({ params }) => {
        const entry = await repository.get(params.key);
        if (!entry) throw missing(params.key);
        return { status: 200, body: entry };
      },
      delete: async ({ params }) => {
        if (!(await repository.delete(params.key))) throw missing(params.key);
        return { status: 204, body: undefined };
      },
      list: async ({ query }) => ({
        status: 200,
        body: await repository.list(query.prefix, { limit: query.limit, cursor: query.cursor }),
      }),
    },
    {
      tokens,
      grants: {
        get: (req) => workerReads(req, req.params.key),
        // A listing holds only keys that start with its prefix: under services/, addresses only.
        list: (req) => workerReads(req, req.query.prefix),
      },
    },
  );
}
