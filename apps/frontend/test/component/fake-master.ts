import { randomUUID } from 'node:crypto';
import { masterContract, type Operation, type TaskState } from '@pixelmill/contracts';
import { AppError, createLogger, createServiceApp, listen, mountContract } from '@pixelmill/kit';

export interface FakeTask {
  id: string;
  op: Operation;
  /** The Content-Type the frontend sent the bytes with. */
  contentType: string | undefined;
  bytes: Buffer;
  state: TaskState;
  error?: string;
  result?: { bytes: Buffer; contentType: string };
}

export interface FakeMaster {
  url: string;
  tasks: Map<string, FakeTask>;
  close(): Promise<void>;
}

/**
 * A master holding its tasks in memory, served through masterContract like the real one, so
 * the frontend's requests are parsed with the contract here and master's answers there.
 */
export async function startFakeMaster(): Promise<FakeMaster> {
  const tasks = new Map<string, FakeTask>();
  const find = (id: string): FakeTask => {
    const task = tasks.get(id);
    if (!task) throw new AppError('not_found', 404, `no task ${id}`);
    return task;
  };
  const notInThisFake = (): never => {
    throw new AppError('not_found', 404, 'the worker side is not part of this fake');
  };
  const app = createServiceApp({
    service: 'master',
    logger: createLogger('master', 'silent'),
    routes: (router) =>
      mountContract(router, masterContract, {
        newImage: ({ query, body }, req) => {
          const id = randomUUID();
          tasks.set(id, { id, op: query.op, contentType: req.get('content-type'), bytes: body, state: 'not_started' });
          return { status: 202, body: { id, state: 'not_started' } };
        },
        isReady: ({ query }) => {
          const { id, state, error } = find(query.id);
          return { status: 200, body: { id, state, ...(error === undefined ? {} : { error }) } };
        },
        get: ({ query }) => {
          const task = find(query.id);
          // Deliberately terse: the frontend is the one that tells the user the state.
          if (!task.result) throw new AppError('conflict', 409, 'no result');
          return { status: 200, body: task.result.bytes, headers: { 'content-type': task.result.contentType } };
        },
        getWork: () => ({ status: 204, body: undefined }),
        workFinished: notInThisFake,
        workFailed: notInThisFake,
        heartbeat: notInThisFake,
      }),
  });
  const server = await listen(app, 0);
  return { url: server.url, tasks, close: () => server.close() };
}
