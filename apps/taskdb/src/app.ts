import type { Express } from 'express';
import { createServiceApp, type Logger } from '@pixelmill/kit';
import type { TaskService } from './domain/task-service';
import { mountTaskRoutes } from './routes/task-routes';

export interface TaskdbAppDeps {
  tasks: TaskService;
  logger: Logger;
  ping: () => void;
}

export function createApp({ tasks, logger, ping }: TaskdbAppDeps): Express {
  return createServiceApp({
    service: 'taskdb',
    logger,
    routes: (router) => mountTaskRoutes(router, tasks),
    readiness: { database: async () => ping() },
  });
}
