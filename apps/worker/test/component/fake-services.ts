import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Request } from 'express';
import {
  kvContract,
  masterContract,
  storageContract,
  type ImageType,
  type Operation,
  type OperationParams,
  type StorageReceipt,
  type StorageState,
  type Work,
} from '@pixelmill/contracts';
import {
  AppError,
  bearerToken,
  createLogger,
  createServiceApp,
  imageFactsOf,
  issueReceipt,
  listen,
  mountContract,
  readStreamedBody,
  instanceKey,
  instanceIdOf,
  SERVICE_KEY_PREFIX,
  servicePrefix,
  type Listening,
  type ServiceTokens,
} from '@pixelmill/kit';

// In-memory stand-ins for master (its worker-side routes), storage and kv, served over real
// HTTP with kit's mountContract and the real contracts, so a drifting worker fails here. Like
// the real ones, storage lets in only its own services or a valid signed URL, and master's
// worker routes and kv want a bearer token once one is required.

const logger = createLogger('fake', 'silent');

/** The token of the stack's own services: the worker never has it. */
const INTERNAL_TOKEN = randomBytes(24).toString('base64url');

/** Attempts a task may have, as taskdb's MAX_ATTEMPTS. */
const MAX_ATTEMPTS = 3;

interface FakeTask {
  id: string;
  op: Operation;
  params?: OperationParams;
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

export interface SeenRequest {
  path: string;
  authorization?: string;
}

interface StoredObject {
  bytes: Buffer;
  contentType: string;
}

export class FakeStorage {
  readonly objects = new Map<string, StoredObject>();
  readonly calls: Array<Call & { requestId?: string; signed: boolean }> = [];
  /** Statuses thrown at the next GETs, one per call. */
  readonly failingGets: number[] = [];
  /** Statuses thrown at the next uploads, one per call. */
  readonly failingPuts: number[] = [];
  /** While set, GETs wait for it before answering. */
  gate: Promise<void> | undefined;
  /** Whether a stored object's answer carries a receipt, as from a storage with a signing key. */
  receipts = true;
  /** The receipts answered, in order. */
  readonly receiptsIssued: StorageReceipt[] = [];
  private readonly secret = randomBytes(32);
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

  /** A URL for one method on one object, valid for `lifetimeMs` (negative: already expired). */
  signedUrl(method: 'GET' | 'POST', state: StorageState, key: string, lifetimeMs: number): string {
    const expires = Date.now() + lifetimeMs;
    return `${this.url}/objects/${state}/${key}?expires=${expires}&signature=${this.sign(method, state, key, expires)}`;
  }

  async start(): Promise<void> {
    const { get, put } = storageContract;
    const app = createServiceApp({
      service: 'storage',
      logger,
      routes: (router) =>
        mountContract(
          router,
          { get, put },
          {
            get: async ({ params }, req) => {
              this.record('get', req, params);
              const failure = this.failingGets.shift();
              if (failure !== undefined) throw new AppError('unavailable', failure, 'storage is having a bad day');
              await this.gate;
              const object = this.get(params.state, params.key);
              if (!object) throw new AppError('not_found', 404, `no ${params.state}/${params.key}`);
              return { status: 200, body: object.bytes, headers: { 'content-type': object.contentType } };
            },
            put: async ({ params, body: streamed }, req) => {
              const body = await readStreamedBody(streamed.stream, streamed.length, streamed.limit);
              this.record('put', req, params);
              const failure = this.failingPuts.shift();
              if (failure !== undefined) throw new AppError('internal', failure, 'storage could not write');
              const contentType = req.get('content-type') ?? '';
              this.put(params.state, params.key, body, contentType);
              const stored = { key: params.key, state: params.state, size: body.length, contentType: contentType as ImageType };
              if (!this.receipts) return { status: 201, body: stored };
              const sha256 = createHash('sha256').update(body).digest('hex');
              const receipt = issueReceipt({ ...stored, sha256, ...imageFactsOf(body) }, this.secret.toString('base64url'));
              this.receiptsIssued.push(receipt);
              return { status: 201, body: { ...stored, receipt } };
            },
          },
          {
            tokens: { internal: INTERNAL_TOKEN },
            grants: { get: (req) => this.checkSignature('GET', req), put: (req) => this.checkSignature('POST', req) },
          },
        ),
    });
    this.server = await listen(app, 0);
  }

  /** Closes, cutting requests still held (a test that failed before opening its gate must not hang). */
  async close(): Promise<void> {
    const closing = this.server?.close();
    this.server?.server.closeAllConnections();
    await closing;
  }

  private record(route: string, req: Request, params: unknown): void {
    this.calls.push({
      route,
      at: Date.now(),
      query: params,
      requestId: req.get('x-request-id'),
      signed: typeof req.query.signature === 'string',
    });
  }

  private sign(method: string, state: string, key: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${method} ${state} ${key} ${expires}`).digest('base64url');
  }

  /** No signature: refused as a stranger (401). A wrong or expired one: 403. */
  private checkSignature(method: 'GET' | 'POST', req: Request): boolean {
    const { expires, signature } = req.query as { expires?: string; signature?: string };
    if (signature === undefined) return false;
    const { state, key } = req.params as { state: string; key: string };
    if (signature !== this.sign(method, state, key, Number(expires)) || !(Number(expires) > Date.now())) {
      throw new AppError('forbidden', 403, 'the signature is not valid or has expired');
    }
    return true;
  }
}

export class FakeMaster {
  readonly calls: Call[] = [];
  /** Every request that reached master, refused ones included. */
  readonly requests: SeenRequest[] = [];
  readonly tasks = new Map<string, FakeTask>();
  /** Statuses thrown at the next getWork calls, one per call, before any task is handed out. */
  readonly failingPolls: number[] = [];
  leaseMs = 5_000;
  /** How many of the next claims come with signed URLs that have already expired. */
  expiredUrls = 0;
  /** getWork requests the worker gave up on before master answered. */
  abortedPolls = 0;
  private readonly tokens: ServiceTokens = {};
  private wakeUp: Array<() => void> = [];
  private server: Listening | undefined;

  constructor(private readonly storage: FakeStorage) {}

  get url(): string {
    return this.server!.url;
  }

  /** From now on the worker routes answer 401 without `Authorization: Bearer <token>`. */
  requireToken(token: string): void {
    this.tokens.worker = token;
  }

  callsTo(route: string): Call[] {
    return this.calls.filter((call) => call.route === route);
  }

  /** `attemptsUsed`: attempts the task had before, out of MAX_ATTEMPTS (as after releases). */
  enqueue(task: { id?: string; op?: Operation; params?: OperationParams; contentType: ImageType; attemptsUsed?: number }): string {
    const id = task.id ?? randomUUID();
    const attempt = task.attemptsUsed ?? 0;
    const { op = 'swap-red-blue', params, contentType } = task;
    this.tasks.set(id, { id, op, ...(params ? { params } : {}), contentType, state: 'queued', attempt });
    this.wake();
    return id;
  }

  /** As master does: a claim's result URL expires with its lease, and each heartbeat answers a new one. */
  resultUrlsExpireWithLease = false;
  readonly renewedResultUrls: string[] = [];

  /** Takes the lease away, as if it had expired and another worker held the task now. */
  revokeLease(id: string): void {
    const task = this.tasks.get(id)!;
    task.leaseToken = randomUUID();
  }

  async start(): Promise<void> {
    const { getWork, heartbeat, workFinished, workFailed, workReleased } = masterContract;
    const app = createServiceApp({
      service: 'master',
      logger,
      routes: (router) => {
        router.use((req, _res, next) => {
          this.requests.push({ path: req.path, authorization: req.get('authorization') });
          next();
        });
        mountContract(
          router,
          { getWork, heartbeat, workFinished, workFailed, workReleased },
          {
            getWork: async ({ query }, _req, res) => {
              this.calls.push({ route: 'getWork', at: Date.now(), query });
              const failure = this.failingPolls.shift();
              if (failure !== undefined) throw new AppError('internal', failure, 'master is having a bad day');
              let gone = false;
              res.once('close', () => {
                gone = !res.writableFinished;
                if (gone) this.abortedPolls += 1;
              });
              const deadline = Date.now() + query.waitMs;
              for (;;) {
                if (gone) return;
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
              const leaseExpiresAt = new Date(task.leaseExpiresAt).toISOString();
              if (!this.resultUrlsExpireWithLease) return { status: 200, body: { id: task.id, leaseExpiresAt } };
              const resultUrl = this.storage.signedUrl('POST', 'finished', task.id, this.leaseMs);
              this.renewedResultUrls.push(resultUrl);
              return { status: 200, body: { id: task.id, leaseExpiresAt, resultUrl } };
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
            workReleased: ({ body }) => {
              this.calls.push({ route: 'workReleased', at: Date.now(), body });
              const task = this.leased(body.id, body.leaseToken);
              task.reason = body.reason;
              // taskdb would wait a backoff first; at once is enough here.
              task.state = task.attempt < MAX_ATTEMPTS ? 'queued' : 'failed';
              this.wake();
              return { status: 200, body: { id: task.id, state: task.state === 'queued' ? 'not_started' : 'failed' } };
            },
          },
          { tokens: this.tokens },
        );
      },
    });
    this.server = await listen(app, 0);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.wake();
    const closing = server?.close();
    server?.server.closeAllConnections();
    await closing;
  }

  private wake(): void {
    const waiting = this.wakeUp;
    this.wakeUp = [];
    for (const resolve of waiting) resolve();
  }

  /** The oldest queued task, or one whose lease expired (a new attempt), with its signed URLs. */
  private claim(): Work | undefined {
    const now = Date.now();
    const task = [...this.tasks.values()].find((t) => t.state === 'queued' || (t.state === 'leased' && t.leaseExpiresAt! <= now));
    if (!task) return undefined;
    task.state = 'leased';
    task.attempt += 1;
    task.leaseToken = randomUUID();
    task.leaseExpiresAt = now + this.leaseMs;
    let urlLifetimeMs = 60_000;
    if (this.expiredUrls > 0) {
      this.expiredUrls -= 1;
      urlLifetimeMs = -1_000;
    }
    return {
      id: task.id,
      op: task.op,
      ...(task.params ? { params: task.params } : {}),
      contentType: task.contentType,
      attempt: task.attempt,
      leaseToken: task.leaseToken,
      leaseExpiresAt: new Date(task.leaseExpiresAt).toISOString(),
      sourceUrl: this.storage.signedUrl('GET', 'inProgress', task.id, urlLifetimeMs),
      resultUrl: this.storage.signedUrl('POST', 'finished', task.id, this.resultUrlsExpireWithLease ? this.leaseMs : urlLifetimeMs),
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

/**
 * A kv that lists where master is, for discovery. With a worker token, it lets that token list
 * `services/` keys only, as the real kv does; the rest wants the internal token.
 */
export async function startFakeKv(
  services: { master: string },
  options: { workerToken?: string } = {},
): Promise<Listening & { requests: SeenRequest[] }> {
  const { list } = kvContract;
  const requests: SeenRequest[] = [];
  const app = createServiceApp({
    service: 'kv',
    logger,
    routes: (router) => {
      router.use((req, _res, next) => {
        requests.push({ path: req.originalUrl, authorization: req.get('authorization') });
        next();
      });
      mountContract(
        router,
        { list },
        {
          list: ({ query }) => {
            const master = {
              key: instanceKey('master', instanceIdOf(services.master)),
              value: services.master,
              updatedAt: new Date().toISOString(),
              expiresAt: null,
            };
            return { status: 200, body: { items: query.prefix === servicePrefix('master') ? [master] : [], nextCursor: null } };
          },
        },
        options.workerToken === undefined
          ? {}
          : {
              tokens: { internal: INTERNAL_TOKEN },
              grants: {
                list: (req) =>
                  bearerToken(req) === options.workerToken &&
                  typeof req.query.prefix === 'string' &&
                  req.query.prefix.startsWith(SERVICE_KEY_PREFIX),
              },
            },
      );
    },
  });
  return Object.assign(await listen(app, 0), { requests });
}
