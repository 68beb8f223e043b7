import { randomUUID } from 'node:crypto';
import { givenParams, masterContract, type Operation, type OperationParams, type TaskState } from '@pixelmill/contracts';
import { AppError, createLogger, createServiceApp, listen, mountContract, readStreamedBody } from '@pixelmill/kit';

export interface FakeTask {
  id: string;
  op: Operation;
  /** The operation's parameters as master's query carried them ({} when none). */
  params?: OperationParams;
  /** The Content-Type the frontend sent the bytes with. */
  contentType: string | undefined;
  bytes: Buffer;
  state: TaskState;
  /** Who may see it: the owner id the frontend named, if any. */
  owner?: string;
  idempotencyKey?: string;
  error?: string;
  result?: { bytes: Buffer; contentType: string };
  /** Its files were deleted after the retention time: master answers 410 for it. */
  expired?: boolean;
}

/** One `POST /newImage` that got past the token check, as master saw it. */
export interface NewImageCall {
  owner?: string;
  idempotencyKey?: string;
  authorization?: string;
}

export interface FakeMasterOptions {
  /** Like the real master: when set, its frontend side answers 401 without `Authorization: Bearer <token>`. */
  internalToken?: string;
  /** The stored bytes each owner may have (anonymous clients included); none means no cap. */
  quotaBytes?: number;
}

export interface FakeMaster {
  url: string;
  tasks: Map<string, FakeTask>;
  newImageCalls: NewImageCall[];
  /** Every request that reached master, with the Authorization header it carried. */
  requests: Array<{ method: string; path: string; url: string; authorization?: string }>;
  /** When set, the next `newImage` creates its task and then drops the connection without answering. */
  loseNextAnswer: boolean;
  /** When set, each `newImage` reads its image, is counted in newImageCalls, and waits for this before it answers. */
  uploadGate?: Promise<void>;
  close(): Promise<void>;
}

/**
 * A master holding its tasks in memory, served through masterContract like the real one, so
 * the frontend's requests are parsed with the contract here and master's answers there. Like
 * master it shows a task only to its owner (others get 404, as for an unknown id) and answers a
 * repeated idempotency key (of the same owner) with the first task.
 */
export async function startFakeMaster({ internalToken, quotaBytes }: FakeMasterOptions = {}): Promise<FakeMaster> {
  const tasks = new Map<string, FakeTask>();
  const newImageCalls: NewImageCall[] = [];
  const requests: FakeMaster['requests'] = [];
  const find = (id: string, owner: string | undefined): FakeTask => {
    const task = tasks.get(id);
    if (!task || task.owner !== owner) throw new AppError('not_found', 404, `no task ${id}`);
    if (task.expired) throw new AppError('gone', 410, `image ${id} has expired`);
    return task;
  };
  const notInThisFake = (): never => {
    throw new AppError('not_found', 404, 'the worker side is not part of this fake');
  };
  const fake: FakeMaster = {
    url: '',
    tasks,
    newImageCalls,
    requests,
    loseNextAnswer: false,
    close: async () => undefined,
  };
  const app = createServiceApp({
    service: 'master',
    logger: createLogger('master', 'silent'),
    // First, so the common routes (the /authz of the frontend's /readyz) are recorded too.
    firstMiddleware: [
      (req, _res, next) => {
        requests.push({ method: req.method, path: req.path, url: req.originalUrl, authorization: req.get('authorization') });
        next();
      },
    ],
    routes: (router) => {
      mountContract(
        router,
        masterContract,
        {
          newImage: async ({ query, headers, body }, req) => {
            const idempotencyKey = headers['idempotency-key'];
            const bytes = await readStreamedBody(body.stream, body.length, body.limit);
            newImageCalls.push({ owner: query.owner, idempotencyKey, authorization: req.get('authorization') });
            if (fake.uploadGate) await fake.uploadGate;
            const earlier = [...tasks.values()].find(
              (task) => idempotencyKey !== undefined && task.idempotencyKey === idempotencyKey && task.owner === query.owner,
            );
            if (earlier) return { status: 202, body: { id: earlier.id, state: earlier.state } };
            const id = randomUUID();
            tasks.set(id, {
              id,
              op: query.op,
              params: givenParams(query),
              contentType: req.get('content-type'),
              bytes,
              state: 'not_started',
              owner: query.owner,
              idempotencyKey,
            });
            if (fake.loseNextAnswer) {
              fake.loseNextAnswer = false;
              req.socket.destroy();
              return;
            }
            return { status: 202, body: { id, state: 'not_started' } };
          },
          isReady: async ({ query }, _req, res) => {
            // Like master's long poll: answers once the task is finished or failed, or waitMs has
            // passed, or the frontend hangs up. Tests change a task's state in place, so it is looked at again.
            const deadline = Date.now() + query.waitMs;
            let gone = false;
            res.once('close', () => (gone = true));
            let task = find(query.id, query.owner);
            while (task.state !== 'finished' && task.state !== 'failed' && Date.now() < deadline && !gone) {
              await new Promise((resolve) => setTimeout(resolve, 20));
              task = find(query.id, query.owner);
            }
            const { id, state, error } = task;
            return { status: 200, body: { id, state, ...(error === undefined ? {} : { error }) } };
          },
          get: ({ query }) => {
            const task = find(query.id, query.owner);
            // Deliberately terse: the frontend is the one that tells the user the state.
            if (!task.result) throw new AppError('conflict', 409, 'no result');
            return { status: 200, body: task.result.bytes, headers: { 'content-type': task.result.contentType } };
          },
          usage: ({ query }) => {
            const storedBytes = [...tasks.values()]
              .filter((task) => task.owner === query.owner)
              .reduce((sum, task) => sum + task.bytes.length, 0);
            return { status: 200, body: { owner: query.owner ?? null, storedBytes, quotaBytes: quotaBytes ?? null } };
          },
          getWork: () => ({ status: 204, body: undefined }),
          workFinished: notInThisFake,
          workFailed: notInThisFake,
          workReleased: notInThisFake,
          heartbeat: notInThisFake,
        },
        { tokens: { internal: internalToken } },
      );
    },
    // Its GET /authz, which the frontend's /readyz calls, takes the same token.
    tokens: { internal: internalToken },
  });
  const server = await listen(app, 0);
  fake.url = server.url;
  fake.close = () => server.close();
  return fake;
}
