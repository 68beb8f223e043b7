import type { Express } from 'express';
import { createServiceApp, type Logger, type ServiceTokens } from '@pixelmill/kit';
import { TaskEventHub } from './domain/task-events';
import type { TaskService } from './domain/task-service';
import { mountTaskRoutes } from './routes/task-routes';

export interface TaskdbAppDeps {
  tasks: TaskService;
  /** What GET /events answers from; one that nothing feeds when not given. */
  events?: TaskEventHub;
  logger: Logger;
  /** Resolves when the database answers. */
  ping: () => Promise<void>;
  tokens?: ServiceTokens;
}

export function createApp({ tasks, events = new TaskEventHub(), logger, ping, tokens = {} }: TaskdbAppDeps): Express {
  return createServiceApp({
    service: 'taskdb',
    logger,
    metrics: tasks.metrics.registry,
    routes: (router) => mountTaskRoutes(router, tasks, events, tokens),
    readiness: { database: ping },
    tokens,
  });
}
