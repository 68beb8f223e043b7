import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  detectImageType,
  givenParams,
  IMAGE_TYPES,
  readDeclaredDimensions,
  resultSizeProblem,
  type Accepted,
  type CreateTaskBody,
  type ImageType,
  type Operation,
  type OperationParams,
  type StorageReceipt,
  type TaskStatus,
  type UsageReport,
  type Work,
} from '@pixelmill/contracts';
import { AppError, IMAGE_HEAD_BYTES, metered, peekStream } from '@pixelmill/kit';
import type { ImageStoreGateway } from '../data-access/image-store-gateway';
import type { Claim, CreateOutcome, Task, TaskGateway } from '../data-access/task-gateway';
import { imageExpired, unknownImage } from './image-errors';
import { expectedResultDimensions, resultBytesBound, resultProblem } from './result-check';
import { LeasesHandedOut } from './leases-handed-out';
import { MasterMetrics } from './master-metrics';
import { UnendedTasks } from './unended-tasks';
import { Signal } from './work-signal';

/** Caps on the bytes an owner may have stored; undefined: no cap. */
export interface Quotas {
  /** Each API key's owner. */
  perKey?: number;
  /** The clients without an API key, together. */
  anonymous?: number;
}

export interface ImageServiceDeps {
  tasks: TaskGateway;
  /** The images' bytes, and the signed URLs through which workers read and write them. */
  store: ImageStoreGateway;
  leaseMs: number;
  claimRecheckMs: number;
  /** How long a signed URL stays valid: past the attempt's hard limit, not much more. */
  signedUrlTtlMs: number;
  quotas?: Quotas;
  /** MAX_IMAGE_PIXELS, as the workers have it: it bounds how many frames a GIF result may hold. */
  maxImagePixels?: number;
  /**
   * Whether taskdb's events reach this master now (its TaskEventFeed follows them): then every end
   * wakes the isReady calls waiting for it, and they ask taskdb again only as a slow backstop.
   */
  followsTaskEvents?: () => boolean;
}

/**
 * How often a waiting isReady asks taskdb again while taskdb's events reach this master: every
 * end is one of those events (or this master's own), so the re-read is a backstop only. Without
 * the events it asks every claimRecheckMs.
 */
export const STATUS_BACKSTOP_MS = 10_000;

/** The accepted types as people name them: a PNG, JPEG, BMP, GIF or TIFF. */
const KNOWN_TYPES = ((names) => `a ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`)(
  IMAGE_TYPES.map((type) => type.replace('image/', '').toUpperCase()),
);

/** An upload as it arrives: passed on to storage as it comes, never held whole. */
export interface IncomingImage {
  stream: Readable;
  /** Its declared length; undefined when it comes chunked (then counted up to `limit`). */
  length: number | undefined;
  /** The most bytes it may have. */
  limit: number;
}

export interface Submission {
  op: Operation;
  /** The operation's parameters (resize: width, height), checked against it by the contract. */
  params?: OperationParams;
  /** Who uploaded it (with API keys); others get 404. */
  owner?: string;
  /** A retried upload with the same key answers the first upload's task. */
  idempotencyKey?: string;
}

/**
 * What an Idempotency-Key is bound to besides the image's bytes: the operation and its parameters,
 * written before the bytes. An operation without parameters is written as it always was, so that
 * a key used before parameters existed still matches.
 */
export function fingerprintHead(op: Operation, params: OperationParams): string {
  return Object.keys(params).length === 0 ? `${op}\n` : `${op} ${JSON.stringify(params)}\n`;
}

/**
 * What master does: accepts images (stored first, then the task, so a worker never claims
 * a task whose image is missing), reports their state, and hands work to workers.
 */
export class ImageService {
  /** Wakes getWork calls waiting for a task. */
  readonly signal = new Signal();
  /** Wakes isReady calls waiting for their task to end, by task id, with the ended state. */
  readonly ended = new Signal<TaskStatus>();
  /** The claims this master answered getWork with, until their attempt ends here. */
  readonly leases = new LeasesHandedOut();
  /** The tasks created here that have not ended, as far as this master knows. */
  readonly unended = new UnendedTasks();
  /** What this master did with tasks, for its `/metrics`. */
  readonly metrics = new MasterMetrics();

  constructor(private readonly deps: ImageServiceDeps) {}

  async accept({ stream, length, limit }: IncomingImage, { op, params: asked, owner, idempotencyKey }: Submission): Promise<Accepted> {
    const empty = () => new AppError('bad_request', 400, 'empty body: send the image bytes');
    if (length === 0) throw empty();
    // The type and the declared size are in the head; the rest streams on to storage unread.
    const head = await peekStream(stream, Math.min(length ?? IMAGE_HEAD_BYTES, IMAGE_HEAD_BYTES));
    if (head.length === 0) throw empty();
    const contentType = detectImageType(head);
    if (!contentType) throw new AppError('unsupported_media_type', 415, `not ${KNOWN_TYPES} image`);
    const declared = readDeclaredDimensions(contentType, head);
    const params = givenParams(asked);
    // A side kept from the aspect ratio may pass the bounds: refused before anything is stored.
    const tooLarge = declared && declared.width > 0 && declared.height > 0 ? resultSizeProblem(op, params, declared) : undefined;
    if (tooLarge) throw new AppError('bad_request', 400, tooLarge);
    // The fingerprint's digest is taken as the bytes go through: known once storage has them all.
    const digest = idempotencyKey === undefined ? undefined : createHash('sha256').update(fingerprintHead(op, params));
    // A client that breaks off fails the storage hop: no source is kept and no task is made.
    const source = metered(stream, limit, digest);
    const id = randomUUID();
    try {
      await this.deps.store.putSource(id, source, contentType, length);
    } catch (err) {
      // Storage may have kept the bytes though its answer was lost: they belong to no task.
      if (!(err instanceof AppError && err.status < 500)) await this.deps.store.deleteSource(id).catch(() => undefined);
      throw err;
    }
    // Known before taskdb has it, so that its end cannot come first.
    this.unended.add(id, owner);
    const outcome = await this.createTask({
      id,
      op,
      ...(Object.keys(params).length > 0 ? { params } : {}),
      contentType,
      owner,
      idempotencyKey,
      // The key is bound to what it was first used with: the same key with other bytes, another op or other params is a 422.
      fingerprint: digest?.digest('hex'),
      sourceBytes: source.bytes,
      ...(declared && declared.width > 0 && declared.height > 0 ? declared : {}),
      quotaBytes: this.quotaOf(owner),
    });
    if (outcome.kind === 'refused' || outcome.task.id !== id) {
      // A refusal, or a repeated upload (the first one's task answers): these bytes are not needed.
      this.unended.delete(id);
      await this.deps.store.deleteSource(id).catch(() => undefined);
      if (outcome.kind === 'refused') throw outcome.error;
      return { id: outcome.task.id, state: outcome.task.state };
    }
    this.metrics.taskCreated();
    this.taskCreated();
    return { id, state: outcome.task.state };
  }

  /** Creates the task; one that taskdb did not take is not known as waiting here. */
  private async createTask(input: CreateTaskBody): Promise<CreateOutcome> {
    try {
      return await this.deps.tasks.create(input);
    } catch (err) {
      this.unended.delete(input.id);
      throw err;
    }
  }

  /** A task was created, through this master or another: the waiting getWork calls try to claim. */
  taskCreated(): void {
    this.signal.notify();
  }

  /** A task ended, through this master or another: the isReady calls waiting for it answer at once. */
  taskEnded(status: TaskStatus): void {
    this.unended.delete(status.id);
    this.ended.notify(status.id, status);
  }

  /** News of created and ended tasks may have been lost: every waiting call asks taskdb again. */
  tasksMissed(): void {
    this.unended.clear();
    this.signal.wakeAll();
    this.ended.wakeAll();
  }

  /** The bytes an owner has stored and its cap (no owner: the clients without an API key). */
  async usage(owner?: string): Promise<UsageReport> {
    const usage = await this.deps.tasks.usage(owner);
    return { ...usage, quotaBytes: this.quotaOf(owner) ?? null };
  }

  private quotaOf(owner: string | undefined): number | undefined {
    return owner === undefined ? this.deps.quotas?.anonymous : this.deps.quotas?.perKey;
  }

  /**
   * A task's state. With waitMs, waits until it is finished or failed (woken when this master
   * records the end or taskdb tells of it, and re-asking taskdb now and then as a backstop).
   */
  async status(id: string, owner?: string, waitMs = 0, signal?: AbortSignal): Promise<TaskStatus> {
    const deadline = Date.now() + waitMs;
    // A task created here that has not ended is not read first while every end reaches this
    // master: the read would only tell what is known (whose it is, that it waits or runs).
    let known = waitMs > 0 && this.deps.followsTaskEvents?.() === true && this.unended.has(id, owner);
    for (;;) {
      if (!known) {
        const task = await this.task(id, owner);
        if (task.state === 'finished' || task.state === 'failed' || deadline - Date.now() <= 0 || signal?.aborted) {
          return { id, state: task.state, ...(task.error ? { error: task.error } : {}) };
        }
      }
      known = false;
      // Woken by an end (this master's own changeState, or taskdb's event), the wake carries the
      // ended state: no second read (the owner was checked above). A timeout, or news that may
      // have been lost, wakes empty and taskdb is asked again.
      const recheckMs = this.deps.followsTaskEvents?.() ? Math.max(STATUS_BACKSTOP_MS, this.deps.claimRecheckMs) : this.deps.claimRecheckMs;
      const ended = await this.ended.wait(Math.max(0, Math.min(deadline - Date.now(), recheckMs)), signal, id);
      if (ended) return ended;
    }
  }

  /** The finished image as a stream from storage: passed on, never held whole in memory. */
  async result(id: string, owner?: string): Promise<{ stream: Readable; contentType: ImageType; size?: string }> {
    const task = await this.task(id, owner);
    if (task.state !== 'finished') {
      throw new AppError('conflict', 409, `image ${id} is ${task.state}, not finished${task.error ? `: ${task.error}` : ''}`);
    }
    const file = await this.deps.store.readResult(id, task.attempt);
    if (file === undefined) throw imageExpired(id);
    return { ...file, contentType: task.contentType };
  }

  /** Claims the next task, waiting up to waitMs for one; undefined means no work to do. */
  async nextWork(waitMs: number, signal?: AbortSignal): Promise<Work | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claimed = await this.deps.tasks.claim(this.deps.leaseMs);
      if (claimed) {
        this.metrics.taskClaimed();
        return this.work(claimed);
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return undefined;
      await this.signal.wait(Math.min(left, this.deps.claimRecheckMs), signal);
    }
  }

  /**
   * Ends the task finished once its result checks out: stored under this attempt's key, of the
   * task's type, the size in pixels its operation makes of the source's (see resultDimensions),
   * and no larger than those pixels can take. What the
   * result is comes from storage's receipt when the worker hands one on (storage is then not
   * asked), else from storage. A result that does not check out, or a receipt that does not hold
   * (forged, altered, expired, another task's or attempt's), is a 422: the task stays in progress,
   * the worker gives it back, and the next attempt writes its own.
   */
  async finished(id: string, leaseToken: string, receipt?: StorageReceipt): Promise<TaskStatus> {
    // A lease handed out here needs no second read of its task (see LeasesHandedOut).
    const task = this.leases.find(id, leaseToken) ?? (await this.anyTask(id));
    const stored = await this.deps.store.storedResult(id, task.attempt, receipt);
    if (stored.kind === 'missing') {
      throw new AppError('conflict', 409, `no result stored for attempt ${task.attempt} of ${id}: upload it to the work's resultUrl first`);
    }
    if (stored.kind === 'refused') {
      throw new AppError('unprocessable_entity', 422, `storage's receipt is refused: ${stored.reason}; the task stays ${task.state}`);
    }
    const problem = resultProblem(stored.result, task, this.deps.maxImagePixels);
    if (problem) throw new AppError('unprocessable_entity', 422, `${problem}; the task stays ${task.state}`);
    return this.changeState(id, { to: 'finished', leaseToken, resultBytes: stored.result.size });
  }

  async failed(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'failed', leaseToken, error: reason });
  }

  /** The worker gives the task back (shutdown, a passing error): taskdb retries it after a backoff. */
  async released(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'not_started', leaseToken, error: reason });
  }

  async heartbeat(id: string, leaseToken: string): Promise<{ id: string; leaseExpiresAt: string; resultUrl: string }> {
    const task = await this.deps.tasks.extendLease(id, leaseToken, this.deps.leaseMs);
    return { id, leaseExpiresAt: task.leaseExpiresAt!, resultUrl: await this.resultUrl(task) };
  }

  private async changeState(
    id: string,
    body: { to: 'finished' | 'failed' | 'not_started'; leaseToken: string; error?: string; resultBytes?: number },
  ): Promise<TaskStatus> {
    const task = await this.deps.tasks.changeState(id, body);
    this.leases.forget(id);
    this.metrics.attemptEnded(task.state, task.attempt);
    const status: TaskStatus = { id, state: task.state, ...(task.error ? { error: task.error } : {}) };
    if (status.state === 'finished' || status.state === 'failed') this.taskEnded(status);
    return status;
  }

  /** A claimed task as the worker gets it: with the URLs to read its source and store its result. */
  private async work(claim: Claim): Promise<Work> {
    this.leases.remember(claim);
    const { id, op, params, contentType, attempt, leaseToken, leaseExpiresAt } = claim;
    const [sourceUrl, resultUrl] = await Promise.all([
      this.deps.store.sourceUrl(id, Date.now() + this.deps.signedUrlTtlMs),
      this.resultUrl(claim),
    ]);
    return { id, op, ...(params ? { params } : {}), contentType, attempt, leaseToken, leaseExpiresAt, sourceUrl, resultUrl };
  }

  /**
   * The signed URL of an attempt's result: its own key, valid until the lease ends (at most the
   * signed URLs' TTL), and no more bytes than the result's pixels can take when the source's header
   * told its size. A worker needs no storage credential.
   */
  private resultUrl(task: Task): Promise<string> {
    const ttlEnd = Date.now() + this.deps.signedUrlTtlMs;
    const expires = task.leaseExpiresAt === null ? ttlEnd : Math.min(ttlEnd, Date.parse(task.leaseExpiresAt));
    const result = expectedResultDimensions(task);
    const maxBytes = result === undefined ? undefined : resultBytesBound(result, task, this.deps.maxImagePixels);
    return this.deps.store.resultUrl(task.id, task.attempt, expires, maxBytes);
  }

  /** A task, as seen by its owner: someone else's task is as unknown as a missing one. */
  private async task(id: string, owner: string | undefined): Promise<Task> {
    const task = await this.anyTask(id);
    if (task.owner !== (owner ?? null)) throw unknownImage(id);
    return task;
  }

  private async anyTask(id: string): Promise<Task> {
    const task = await this.deps.tasks.get(id);
    if (task === undefined) throw unknownImage(id);
    return task;
  }
}
