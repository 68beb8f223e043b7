import type { Router } from 'express';
import { taskdbContract } from '@pixelmill/contracts';
import { mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { TaskService } from '../domain/task-service';

export function mountTaskRoutes(router: Router, tasks: TaskService, tokens: ServiceTokens): void {
  mountContract(
    router,
    taskdbContract,
    {
      create: async ({ body }) => {
        const { task, created } = await tasks.create(body);
        return created ? { status: 201, body: task } : { status: 200, body: task };
      },
      get: async ({ params }) => ({ status: 200, body: await tasks.get(params.id) }),
      changeState: async ({ params, body }) => ({ status: 200, body: await tasks.changeState(params.id, body) }),
      list: async ({ query }) => ({ status: 200, body: await tasks.list(query.state, query.limit, query.cursor) }),
      claim: async ({ body }) => {
        const claim = await tasks.claim(body.leaseMs);
        return claim ? { status: 200, body: claim } : { status: 204, body: undefined };
      },
      extendLease: async ({ params, body }) => ({
        status: 200,
        body: await tasks.extendLease(params.id, body.leaseToken, body.leaseMs),
      }),
      usage: async ({ query }) => ({ status: 200, body: await tasks.usage(query.owner) }),
      // replaced by the events hub
      events: () => ({ status: 200, body: { cursor: '0', events: [], reset: true } }),
      housekeeping: async ({ query }) => ({
        status: 200,
        body: await tasks.housekeeping(Date.parse(query.expireBefore), query.limit),
      }),
      housekeepingDone: async ({ body }) => ({ status: 200, body: await tasks.housekeepingDone(body) }),
    },
    { tokens },
  );
}
