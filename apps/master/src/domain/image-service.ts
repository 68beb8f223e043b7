import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  detectImageType,
  readDeclaredDimensions,
  resultKey,
  storageContract,
  taskdbContract,
  type Accepted,
  type ImageType,
  type Operation,
  type TaskStatus,
  type UsageReport,
  type Work,
} from '@pixelmill/contracts';
import {
  AppError,
  downstreamError,
  expectStatus,
  IMAGE_HEAD_BYTES,
  peekStream,
  signedObjectUrl,
  type ContractClient,
} from '@pixelmill/kit';
import { maxResultBytes, resultProblem } from './result-check';
import { Signal } from './work-signal';

/** Caps on the bytes an owner may have stored; undefined: no cap. */
export interface Quotas {
  /** Each API key's owner. */
  perKey?: number;
  /** The clients without an API key, together. */
  anonymous?: number;
}

export interface ImageServiceDeps {
  taskdb: ContractClient;
  storage: ContractClient;
  leaseMs: number;
  claimRecheckMs: number;
  /** Where workers reach storage: the address in the signed URLs. */
  storageUrl: () => Promise<string>;
  /** Signs the storage URLs handed to workers; unsigned URLs when storage is open. */
  signingKey?: string;
  /** How long a signed URL stays valid: past the attempt's hard limit, not much more. */
  signedUrlTtlMs: number;
  quotas?: Quotas;
}

export interface Submission {
  op: Operation;
  /** Who uploaded it (with API keys); others get 404. */
  owner?: string;
  /** A retried upload with the same key answers the first upload's task. */
  idempotencyKey?: string;
}

const expired = (id: string): AppError =>
  new AppError('gone', 410, `image ${id} has expired: its files were deleted after the retention time`);

/**
 * What master does: accepts images (stored first, then the task, so a worker never claims
 * a task whose image is missing), reports their state, and hands work to workers.
 */
export class ImageService {
  /** Wakes getWork calls waiting for a task. */
  readonly signal = new Signal();
  /** Wakes isReady calls waiting for their task to end, by task id, with the ended state. */
  readonly ended = new Signal<TaskStatus>();

  constructor(private readonly deps: ImageServiceDeps) {}

  async accept(bytes: Buffer, { op, owner, idempotencyKey }: Submission): Promise<Accepted> {
    if (bytes.length === 0) throw new AppError('bad_request', 400, 'empty body: send the image bytes');
    const contentType = detectImageType(bytes);
    if (!contentType) throw new AppError('unsupported_media_type', 415, 'not a PNG, JPEG, BMP or GIF image');
    const id = randomUUID();
    expectStatus(
      await this.deps.storage.call(storageContract.put, {
        params: { state: 'inProgress', key: id },
        body: bytes,
        contentType,
      }),
      201,
      'storage',
    );
    const declared = readDeclaredDimensions(contentType, bytes);
    const created = await this.deps.taskdb.call(taskdbContract.create, {
      body: {
        id,
        op,
        contentType,
        owner,
        idempotencyKey,
        // The key is bound to what it was first used with: the same key with other bytes or another op is a 422.
        fingerprint: idempotencyKey === undefined ? undefined : createHash('sha256').update(`${op}\n`).update(bytes).digest('hex'),
        sourceBytes: bytes.length,
        ...(declared && declared.width > 0 && declared.height > 0 ? declared : {}),
        quotaBytes: this.quotaOf(owner),
      },
    });
    if ((created.status === 200 && created.body.id !== id) || (created.status !== 200 && created.status !== 201)) {
      // A repeated upload (the first one's task answers) or a refusal: these bytes are not needed.
      await this.deps.storage.call(storageContract.delete, { params: { state: 'inProgress', key: id } }).catch(() => undefined);
      if (created.status === 200) return { id: created.body.id, state: created.body.state };
      throw downstreamError(created, 'taskdb');
    }
    this.signal.notify();
    return { id, state: created.body.state };
  }

  /** The bytes an owner has stored and its cap (no owner: the clients without an API key). */
  async usage(owner?: string): Promise<UsageReport> {
    const usage = expectStatus(await this.deps.taskdb.call(taskdbContract.usage, { query: { owner } }), 200, 'taskdb');
    return { ...usage.body, quotaBytes: this.quotaOf(owner) ?? null };
  }

  private quotaOf(owner: string | undefined): number | undefined {
    return owner === undefined ? this.deps.quotas?.anonymous : this.deps.quotas?.perKey;
  }

  /**
   * A task's state. With waitMs, waits until it is finished or failed (woken when this master
   * records the end, and re-asking taskdb now and then for ends recorded elsewhere).
   */
  async status(id: string, owner?: string, waitMs = 0, signal?: AbortSignal): Promise<TaskStatus> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const task = await this.task(id, owner);
      const left = deadline - Date.now();
      if (task.state === 'finished' || task.state === 'failed' || left <= 0 || signal?.aborted) {
        return { id, state: task.state, ...(task.error ? { error: task.error } : {}) };
      }
      // Woken by this master's own changeState, the wake carries the ended state: no second read
      // (the owner was checked by the read above). A timeout wakes empty and taskdb is asked again.
      const ended = await this.ended.wait(Math.min(left, this.deps.claimRecheckMs), signal, id);
      if (ended) return ended;
    }
  }

  /** The finished image as a stream from storage: passed on, never held whole in memory. */
  async result(id: string, owner?: string): Promise<{ stream: Readable; contentType: ImageType; size?: string }> {
    const task = await this.task(id, owner);
    if (task.state !== 'finished') {
      throw new AppError('conflict', 409, `image ${id} is ${task.state}, not finished${task.error ? `: ${task.error}` : ''}`);
    }
    const file = await this.deps.storage.callStream(storageContract.get, {
      params: { state: 'finished', key: resultKey(id, task.attempt) },
    });
    if (file.status === 404) throw expired(id);
    if (file.stream === undefined) throw downstreamError(file, 'storage');
    return { stream: file.stream, contentType: task.contentType, size: file.headers['content-length'] };
  }

  /** Claims the next task, waiting up to waitMs for one; undefined means no work to do. */
  async nextWork(waitMs: number, signal?: AbortSignal): Promise<Work | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claimed = await this.deps.taskdb.call(taskdbContract.claim, { body: { leaseMs: this.deps.leaseMs } });
      if (claimed.status === 200) {
        const { id, op, contentType, attempt, leaseToken, leaseExpiresAt } = claimed.body;
        const storageUrl = await this.deps.storageUrl();
        return {
          id,
          op,
          contentType,
          attempt,
          leaseToken,
          leaseExpiresAt,
          sourceUrl: signedObjectUrl(
            storageUrl,
            { method: 'GET', state: 'inProgress', key: id, expires: Date.now() + this.deps.signedUrlTtlMs },
            this.deps.signingKey,
          ),
          resultUrl: this.resultUrl(storageUrl, claimed.body),
        };
      }
      expectStatus(claimed, 204, 'taskdb');
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return undefined;
      await this.signal.wait(Math.min(left, this.deps.claimRecheckMs), signal);
    }
  }

  /**
   * Ends the task finished once its result checks out: stored under this attempt's key, of the
   * task's type, the source's size in pixels, and no larger than those pixels can take. A result
   * that does not is a 422 (the worker gives the task back, and the next attempt writes its own).
   */
  async finished(id: string, leaseToken: string): Promise<TaskStatus> {
    const task = await this.anyTask(id);
    const key = resultKey(id, task.attempt);
    // Only the head is needed: the rest of a large result is not read off the disk and sent.
    const file = await this.deps.storage.callStream(storageContract.get, {
      params: { state: 'finished', key },
      headers: { range: `bytes=0-${IMAGE_HEAD_BYTES - 1}` },
    });
    if (file.status === 404) {
      throw new AppError('conflict', 409, `no result stored for attempt ${task.attempt} of ${id}: upload it to the work's resultUrl first`);
    }
    if (file.stream === undefined) throw downstreamError(file, 'storage');
    // A 206 names the whole size after the slash of its Content-Range.
    const size = Number(file.status === 206 ? /\/(\d+)$/.exec(file.headers['content-range'] ?? '')?.[1] : file.headers['content-length']);
    let head: Buffer;
    try {
      head = await peekStream(file.stream, IMAGE_HEAD_BYTES);
    } finally {
      // The part asked for is read to its end, so the connection stays usable; a whole object is cut off.
      if (file.status === 206) file.stream.resume();
      else file.stream.destroy();
    }
    const problem = resultProblem(head, size, task);
    if (problem) throw new AppError('unprocessable_entity', 422, `${problem}; the task stays ${task.state}`);
    return this.changeState(id, { to: 'finished', leaseToken, resultBytes: size });
  }

  async failed(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'failed', leaseToken, error: reason });
  }

  /** The worker gives the task back (shutdown, a passing error): taskdb retries it after a backoff. */
  async released(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'not_started', leaseToken, error: reason });
  }

  async heartbeat(id: string, leaseToken: string): Promise<{ id: string; leaseExpiresAt: string; resultUrl: string }> {
    const extended = expectStatus(
      await this.deps.taskdb.call(taskdbContract.extendLease, {
        params: { id },
        body: { leaseToken, leaseMs: this.deps.leaseMs },
      }),
      200,
      'taskdb',
    );
    const task = extended.body;
    return { id, leaseExpiresAt: task.leaseExpiresAt!, resultUrl: this.resultUrl(await this.deps.storageUrl(), task) };
  }

  private async changeState(
    id: string,
    body: { to: 'finished' | 'failed' | 'not_started'; leaseToken: string; error?: string; resultBytes?: number },
  ): Promise<TaskStatus> {
    const changed = expectStatus(await this.deps.taskdb.call(taskdbContract.changeState, { params: { id }, body }), 200, 'taskdb');
    const task = changed.body;
    const status: TaskStatus = { id, state: task.state, ...(task.error ? { error: task.error } : {}) };
    if (status.state === 'finished' || status.state === 'failed') this.ended.notify(id, status);
    return status;
  }

  /**
   * The signed URL of an attempt's result: its own key, valid until the lease ends (at most the
   * signed URLs' TTL), and no more bytes than the source's pixels can take when its header told
   * them. A worker needs no storage credential.
   */
  private resultUrl(
    storageUrl: string,
    task: { id: string; attempt: number; leaseExpiresAt: string | null; width: number | null; height: number | null },
  ): string {
    const ttlEnd = Date.now() + this.deps.signedUrlTtlMs;
    const expires = task.leaseExpiresAt === null ? ttlEnd : Math.min(ttlEnd, Date.parse(task.leaseExpiresAt));
    const maxBytes = task.width !== null && task.height !== null ? maxResultBytes({ width: task.width, height: task.height }) : undefined;
    return signedObjectUrl(
      storageUrl,
      { method: 'POST', state: 'finished', key: resultKey(task.id, task.attempt), expires, maxBytes },
      this.deps.signingKey,
    );
  }

  /** A task, as seen by its owner: someone else's task is as unknown as a missing one. */
  private async task(id: string, owner: string | undefined) {
    const task = await this.anyTask(id);
    if (task.owner !== (owner ?? null)) throw new AppError('not_found', 404, `no image with id ${id}`);
    return task;
  }

  private async anyTask(id: string) {
    const result = await this.deps.taskdb.call(taskdbContract.get, { params: { id } });
    if (result.status === 404) throw new AppError('not_found', 404, `no image with id ${id}`);
    if (result.status === 410) throw expired(id);
    if (result.status !== 200) throw downstreamError(result, 'taskdb');
    return result.body;
  }
}
