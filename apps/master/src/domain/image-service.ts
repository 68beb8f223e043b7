import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  detectImageType,
  storageContract,
  taskdbContract,
  type Accepted,
  type ImageType,
  type Operation,
  type TaskStatus,
  type Work,
} from '@pixelmill/contracts';
import { AppError, downstreamError, expectStatus, signedObjectUrl, type ContractClient } from '@pixelmill/kit';
import { Signal } from './work-signal';

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
}

export interface Submission {
  op: Operation;
  /** Who uploaded it (with API keys); others get 404. */
  owner?: string;
  /** A retried upload with the same key answers the first upload's task. */
  idempotencyKey?: string;
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
    const created = await this.deps.taskdb.call(taskdbContract.create, {
      body: { id, op, contentType, owner, idempotencyKey },
    });
    if (created.status === 200 && created.body.id !== id) {
      // A repeated upload: the first one's task answers, and these bytes are not needed.
      await this.deps.storage
        .call(storageContract.delete, { params: { state: 'inProgress', key: id } })
        .catch(() => undefined);
      return { id: created.body.id, state: created.body.state };
    }
    if (created.status !== 200 && created.status !== 201) throw downstreamError(created, 'taskdb');
    this.signal.notify();
    return { id, state: created.body.state };
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
    const file = await this.deps.storage.callStream(storageContract.get, { params: { state: 'finished', key: id } });
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
        return { id, op, contentType, attempt, leaseToken, leaseExpiresAt, ...(await this.signedUrls(id)) };
      }
      expectStatus(claimed, 204, 'taskdb');
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return undefined;
      await this.signal.wait(Math.min(left, this.deps.claimRecheckMs), signal);
    }
  }

  async finished(id: string, leaseToken: string): Promise<TaskStatus> {
    const head = await this.deps.storage.call(storageContract.head, { params: { state: 'finished', key: id } });
    if (head.status === 404) {
      await this.anyTask(id); // an unknown task is a 404, not a missing result
      throw new AppError('conflict', 409, `no result stored for ${id}: upload finished/${id} to storage first`);
    }
    expectStatus(head, 200, 'storage');
    return this.changeState(id, { to: 'finished', leaseToken });
  }

  async failed(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'failed', leaseToken, error: reason });
  }

  /** The worker gives the task back (shutdown, a passing error): taskdb retries it after a backoff. */
  async released(id: string, leaseToken: string, reason: string): Promise<TaskStatus> {
    return this.changeState(id, { to: 'not_started', leaseToken, error: reason });
  }

  async heartbeat(id: string, leaseToken: string): Promise<{ id: string; leaseExpiresAt: string }> {
    const extended = expectStatus(
      await this.deps.taskdb.call(taskdbContract.extendLease, {
        params: { id },
        body: { leaseToken, leaseMs: this.deps.leaseMs },
      }),
      200,
      'taskdb',
    );
    return { id, leaseExpiresAt: extended.body.leaseExpiresAt! };
  }

  private async changeState(
    id: string,
    body: { to: 'finished' | 'failed' | 'not_started'; leaseToken: string; error?: string },
  ): Promise<TaskStatus> {
    const changed = expectStatus(await this.deps.taskdb.call(taskdbContract.changeState, { params: { id }, body }), 200, 'taskdb');
    const task = changed.body;
    const status: TaskStatus = { id, state: task.state, ...(task.error ? { error: task.error } : {}) };
    if (status.state === 'finished' || status.state === 'failed') this.ended.notify(id, status);
    return status;
  }

  /** Task-scoped, short-lived storage URLs: a worker needs no storage credential. */
  private async signedUrls(id: string): Promise<{ sourceUrl: string; resultUrl: string }> {
    const storageUrl = await this.deps.storageUrl();
    const expires = Date.now() + this.deps.signedUrlTtlMs;
    return {
      sourceUrl: signedObjectUrl(storageUrl, { method: 'GET', state: 'inProgress', key: id, expires }, this.deps.signingKey),
      resultUrl: signedObjectUrl(storageUrl, { method: 'POST', state: 'finished', key: id, expires }, this.deps.signingKey),
    };
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
    if (result.status !== 200) throw downstreamError(result, 'taskdb');
    return result.body;
  }
}
