import type { Express } from 'express';
import { createServiceApp, type Logger, type ServiceTokens } from '@pixelmill/kit';
import type { TaskService } from './domain/task-service';
import { mountTaskRoutes } from './routes/task-routes';

export interface TaskdbAppDeps {
  tasks: TaskService;
  logger: Logger;
  /** Resolves when the database answers. */
  ping: () => Promise<void>;
  tokens?: ServiceTokens;
}

export function createApp({ tasks, logger, ping, tokens = {} }: TaskdbAppDeps): Express {
  return createServiceApp({
    service: 'taskdb',
    logger,
    routes: (router) => mountTaskRoutes(router, tasks, tokens),
    readiness: { database: ping },
  });
}
