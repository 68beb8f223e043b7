import type { Router } from 'express';
import { taskdbContract } from '@pixelmill/contracts';
import { mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { TaskService } from '../domain/task-service';

export function mountTaskRoutes(router: Router, tasks: TaskService, tokens: ServiceTokens): void {
  mountContract(
    router,
    taskdbContract,
    {
      create: ({ body }) => {
        const { task, created } = tasks.create(body);
        return created ? { status: 201, body: task } : { status: 200, body: task };
      },
      get: ({ params }) => ({ status: 200, body: tasks.get(params.id) }),
      changeState: ({ params, body }) => ({ status: 200, body: tasks.changeState(params.id, body) }),
      list: ({ query }) => ({ status: 200, body: tasks.list(query.state, query.limit, query.cursor) }),
      claim: ({ body }) => {
        const claim = tasks.claim(body.leaseMs);
        return claim ? { status: 200, body: claim } : { status: 204, body: undefined };
      },
      extendLease: ({ params, body }) => ({ status: 200, body: tasks.extendLease(params.id, body.leaseToken, body.leaseMs) }),
      usage: ({ query }) => ({ status: 200, body: tasks.usage(query.owner) }),
      housekeeping: ({ query }) => ({
        status: 200,
        body: tasks.housekeeping(Date.parse(query.expireBefore), query.limit),
      }),
      housekeepingDone: ({ body }) => ({ status: 200, body: tasks.housekeepingDone(body) }),
    },
    { tokens },
  );
}
