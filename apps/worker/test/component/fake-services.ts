import { randomUUID } from 'node:crypto';
import {
  kvContract,
  masterContract,
  storageContract,
  type ImageType,
  type Operation,
  type StorageState,
  type Work,
} from '@pixelmill/contracts';
import { AppError, createLogger, createServiceApp, listen, mountContract, serviceKey, type Listening } from '@pixelmill/kit';

// In-memory stand-ins for master (its worker-side routes), storage and kv, served over real
// HTTP with kit's mountContract and the real contracts, so a drifting worker fails here.

const logger = createLogger('fake', 'silent');

interface FakeTask {
  id: string;
  op: Operation;
  contentType: ImageType;
  state: 'queued' | 'leased' | 'finished' | 'failed';
  attempt: number;
  leaseToken?: string;
  leaseExpiresAt?: number;
  reason?: string;
}

export interface Call {
  route: string;
  at: number;
  body?: unknown;
  query?: unknown;
}

export class FakeMaster {
  readonly calls: Call[] = [];
  readonly tasks = new Map<string, FakeTask>();
  /** Statuses thrown at the next getWork calls, one per call, before any task is handed out. */
  readonly failingPolls: number[] = [];
  leaseMs = 5_000;
  private wakeUp: Array<() => void> = [];
  private server: Listening | undefined;

  get url(): string {
    return this.server!.url;
  }

  callsTo(route: string): Call[] {
    return this.calls.filter((call) => call.route === route);
  }

  enqueue(task: { id?: string; op?: Operation; contentType: ImageType }): string {
    const id = task.id ?? randomUUID();
    this.tasks.set(id, { id, op: task.op ?? 'swap-red-blue', contentType: task.contentType, state: 'queued', attempt: 0 });
    this.wake();
    return id;
  }

  /** Takes the lease away, as if it had expired and another worker held the task now. */
  revokeLease(id: string): void {
    const task = this.tasks.get(id)!;
    task.leaseToken = randomUUID();
  }

  async start(): Promise<void> {
    const { getWork, heartbeat, workFinished, workFailed } = masterContract;
    const app = createServiceApp({
      service: 'master',
      logger,
      routes: (router) =>
        mountContract(router, { getWork, heartbeat, workFinished, workFailed }, {
          getWork: async ({ query }) => {
            this.calls.push({ route: 'getWork', at: Date.now(), query });
            const failure = this.failingPolls.shift();
            if (failure !== undefined) throw new AppError('internal', failure, 'master is having a bad day');
            const deadline = Date.now() + query.waitMs;
            for (;;) {
              const work = this.claim();
              if (work) return { status: 200, body: work };
              const left = deadline - Date.now();
              if (left <= 0 || !this.server) return { status: 204, body: undefined };
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, Math.min(left, 20));
                this.wakeUp.push(() => {
                  clearTimeout(timer);
                  resolve();
                });
              });
            }
          },
          heartbeat: ({ body }) => {
            this.calls.push({ route: 'heartbeat', at: Date.now(), body });
            const task = this.leased(body.id, body.leaseToken);
            task.leaseExpiresAt = Date.now() + this.leaseMs;
            return { status: 200, body: { id: task.id, leaseExpiresAt: new Date(task.leaseExpiresAt).toISOString() } };
          },
          workFinished: ({ body }) => {
            this.calls.push({ route: 'workFinished', at: Date.now(), body });
            const task = this.leased(body.id, body.leaseToken);
            task.state = 'finished';
            return { status: 200, body: { id: task.id, state: 'finished' } };
          },
          workFailed: ({ body }) => {
            this.calls.push({ route: 'workFailed', at: Date.now(), body });
            const task = this.leased(body.id, body.leaseToken);
            task.state = 'failed';
            task.reason = body.reason;
            return { status: 200, body: { id: task.id, state: 'failed', error: body.reason } };
          },
        }),
    });
    this.server = await listen(app, 0);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.wake();
    await server?.close();
  }

  private wake(): void {
    const waiting = this.wakeUp;
    this.wakeUp = [];
    for (const resolve of waiting) resolve();
  }

  /** The oldest queued task, or one whose lease expired (a new attempt). */
  private claim(): Work | undefined {
    const now = Date.now();
    const task = [...this.tasks.values()].find(
      (t) => t.state === 'queued' || (t.state === 'leased' && t.leaseExpiresAt! <= now),
    );
    if (!task) return undefined;
    task.state = 'leased';
    task.attempt += 1;
    task.leaseToken = randomUUID();
    task.leaseExpiresAt = now + this.leaseMs;
    return {
      id: task.id,
      op: task.op,
      contentType: task.contentType,
      attempt: task.attempt,
      leaseToken: task.leaseToken,
      leaseExpiresAt: new Date(task.leaseExpiresAt).toISOString(),
    };
  }

  private leased(id: string, leaseToken: string): FakeTask {
    const task = this.tasks.get(id);
    if (!task) throw new AppError('not_found', 404, `no task ${id}`);
    if (task.state !== 'leased' || task.leaseToken !== leaseToken) {
      throw new AppError('conflict', 409, `task ${id} is ${task.state} under another lease`);
    }
    return task;
  }
}

interface StoredObject {
  bytes: Buffer;
  contentType: string;
}

export class FakeStorage {
  readonly objects = new Map<string, StoredObject>();
  readonly calls: Array<Call & { requestId?: string }> = [];
  /** Statuses thrown at the next GETs, one per call. */
  readonly failingGets: number[] = [];
  /** While set, GETs wait for it before answering. */
  gate: Promise<void> | undefined;
  private server: Listening | undefined;

  get url(): string {
    return this.server!.url;
  }

  callsTo(route: string) {
    return this.calls.filter((call) => call.route === route);
  }

  put(state: StorageState, key: string, bytes: Buffer, contentType: string): void {
    this.objects.set(`${state}/${key}`, { bytes, contentType });
  }

  get(state: StorageState, key: string): StoredObject | undefined {
    return this.objects.get(`${state}/${key}`);
  }

  async start(): Promise<void> {
    const { get, put } = storageContract;
    const app = createServiceApp({
      service: 'storage',
      logger,
      routes: (router) =>
        mountContract(router, { get, put }, {
          get: async ({ params }, req) => {
            this.calls.push({ route: 'get', at: Date.now(), query: params, requestId: req.get('x-request-id') });
            const failure = this.failingGets.shift();
            if (failure !== undefined) throw new AppError('unavailable', failure, 'storage is having a bad day');
            await this.gate;
            const object = this.get(params.state, params.key);
            if (!object) throw new AppError('not_found', 404, `no ${params.state}/${params.key}`);
            return { status: 200, body: object.bytes, headers: { 'content-type': object.contentType } };
          },
          put: ({ params, body }, req) => {
            const contentType = req.get('content-type') ?? '';
            this.calls.push({ route: 'put', at: Date.now(), query: params });
            this.put(params.state, params.key, body, contentType);
            return {
              status: 201,
              body: { key: params.key, state: params.state, size: body.length, contentType: contentType as ImageType },
            };
          },
        }),
    });
    this.server = await listen(app, 0);
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}

/** A kv that knows where master and storage are, for discovery. */
export async function startFakeKv(services: { master: string; storage: string }): Promise<Listening> {
  const { get } = kvContract;
  const app = createServiceApp({
    service: 'kv',
    logger,
    routes: (router) =>
      mountContract(router, { get }, {
        get: ({ params }) => {
          const entry = Object.entries(services).find(([name]) => serviceKey(name as 'master' | 'storage') === params.key);
          if (!entry) throw new AppError('not_found', 404, `no key ${params.key}`);
          return {
            status: 200,
            body: { key: params.key, value: entry[1], updatedAt: new Date().toISOString(), expiresAt: null },
          };
        },
      }),
  });
  return listen(app, 0);
}
