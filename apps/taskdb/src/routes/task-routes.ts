import type { Router } from 'express';
import { taskdbContract } from '@pixelmill/contracts';
import { AppError, hangUpSignal, mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { TaskEventHub } from '../domain/task-events';
import type { TaskService } from '../domain/task-service';

export function mountTaskRoutes(router: Router, tasks: TaskService, events: TaskEventHub, tokens: ServiceTokens): void {
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
      list: async ({ query }) => ({ status: 200, body: await tasks.list(query.state, query.limit, query.cursor, query.view) }),
      retry: async ({ params, body }) => ({
        status: 200,
        body: await tasks.retry(params.id, body.endedAfter === undefined ? undefined : Date.parse(body.endedAfter)),
      }),
      cancel: async ({ params, body }) => ({ status: 200, body: await tasks.cancel(params.id, body.reason) }),
      remove: async ({ params }) => {
        await tasks.remove(params.id);
        return { status: 204, body: undefined };
      },
      claim: async ({ body }) => {
        const claim = await tasks.claim(body.leaseMs);
        return claim ? { status: 200, body: claim } : { status: 204, body: undefined };
      },
      extendLease: async ({ params, body }) => ({
        status: 200,
        body: await tasks.extendLease(params.id, body.leaseToken, body.leaseMs),
      }),
      usage: async ({ query }) => ({ status: 200, body: await tasks.usage(query.owner) }),
      events: async ({ query }, _req, res) => {
        // A master that hangs up ends its wait.
        const answer = await events.wait(query.after, query.waitMs, hangUpSignal(res));
        if (events.closed) {
          // A master polls elsewhere, after its backoff, rather than here again at once. Written
          // here, not thrown: a shutdown is no error to log.
          res
            .status(503)
            .set('connection', 'close')
            .json(new AppError('unavailable', 503, 'taskdb is shutting down: poll another instance').toBody());
          return;
        }
        return { status: 200, body: answer };
      },
      housekeeping: async ({ query }) => ({
        status: 200,
        body: await tasks.housekeeping(Date.parse(query.expireBefore), query.limit),
      }),
      housekeepingDone: async ({ body }) => ({ status: 200, body: await tasks.housekeepingDone(body) }),
    },
    { tokens },
  );
}
