import type { Router } from 'express';
import { masterAdminContract } from '@pixelmill/contracts';
import { mountContract, type ServiceTokens } from '@pixelmill/kit';
import type { TaskAdmin } from '../domain/task-admin';

/** The operators' routes, behind the internal token (see masterAdminContract). */
export function mountAdminRoutes(router: Router, admin: TaskAdmin, tokens: ServiceTokens): void {
  mountContract(
    router,
    masterAdminContract,
    {
      listTasks: async ({ query }) => ({ status: 200, body: await admin.list(query.state, query.limit, query.cursor) }),
      retryTask: async ({ params }) => ({ status: 200, body: await admin.retry(params.id) }),
      cancelTask: async ({ params }) => ({ status: 200, body: await admin.cancel(params.id) }),
      deleteTask: async ({ params }) => {
        await admin.delete(params.id);
        return { status: 204, body: undefined };
      },
    },
    { tokens },
  );
}
