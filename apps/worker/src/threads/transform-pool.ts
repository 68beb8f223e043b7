import fs from 'node:fs';
import path from 'node:path';
import { Worker as Thread, type ResourceLimits } from 'node:worker_threads';
import type { ImageType, Operation, OperationParams } from '@pixelmill/contracts';
import type { Logger } from '@pixelmill/kit';
import type { ImageCodecOptions } from '../domain/image-codec';
import { PermanentWorkError } from '../domain/work-errors';
import {
  asBuffer,
  fromThreadError,
  transferable,
  type ThreadData,
  type ThreadMessage,
  type TransformRequest,
  type TransformTimings,
} from './transform-protocol';

export interface TransformJob {
  /** Moved to the thread: empty (detached) once run() was called. */
  source: Buffer;
  contentType: ImageType;
  op: Operation;
  /** The operation's parameters (resize: width, height); absent for those without any. */
  params?: OperationParams;
}

export interface TransformOutput {
  bytes: Buffer;
  timings: TransformTimings;
  /** From run() until a thread took the job. */
  queuedMs: number;
}

export interface RunOptions {
  /** Aborting drops the job: taken out of the queue, or its thread stopped and replaced. */
  signal?: AbortSignal;
  /** Called when the job's last step (encoding) starts. */
  onEncoding?: () => void;
}

/** What the worker needs of the pool. */
export interface TransformRunner {
  run(job: TransformJob, options?: RunOptions): Promise<TransformOutput>;
  close(): Promise<void>;
}

export interface TransformPoolOptions {
  /** Threads, each transforming one image at a time. */
  size: number;
  codec: ImageCodecOptions;
  /** The compiled thread entry point; by default the one of this build (see defaultThreadScript). */
  script?: string;
  /** Heap limits of each thread: a thread past them dies (and is replaced) instead of the process. */
  resourceLimits?: ResourceLimits;
  /** The longest a job may run in its thread: then the thread is stopped and the job fails. */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * A thread died while it held the job (an uncaught exception, an exit): the task is not at fault
 * as far as anyone knows, so it is given back rather than failed. (Its heap limit is another
 * matter: ThreadOutOfMemoryError.)
 */
export class ThreadCrashedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ThreadCrashedError';
  }
}

/**
 * A job ran past the pool's time limit: its thread was stopped. The same image would take as
 * long again, so the task fails.
 */
export class TransformTimeoutError extends PermanentWorkError {
  constructor(timeoutMs: number) {
    super(`the transform took longer than TRANSFORM_TIMEOUT_MS (${timeoutMs} ms) and was stopped`);
    this.name = 'TransformTimeoutError';
  }
}

/**
 * A thread died of its heap limit while it held the job: the image needed more than its estimate
 * said, and it would again. The task fails rather than being retried.
 */
export class ThreadOutOfMemoryError extends PermanentWorkError {
  constructor(heapLimitMb: number | undefined, options?: { cause?: unknown }) {
    const limit = heapLimitMb === undefined ? '' : ` of ${heapLimitMb} MB`;
    super(`the image needs more memory to transform than a transform thread may use (its heap limit${limit})`, options);
    this.name = 'ThreadOutOfMemoryError';
  }
}

/**
 * The thread's entry point, compiled. It sits beside this module in dist/. Under ts-jest this
 * module is the TypeScript source in src/, and a thread cannot load TypeScript: the build in
 * dist/ is run instead (turbo builds this package before it tests it).
 */
export function defaultThreadScript(): string {
  const compiled = !__filename.endsWith('.ts');
  return compiled
    ? path.join(__dirname, 'transform-thread.js')
    : path.resolve(__dirname, '..', '..', 'dist', 'threads', 'transform-thread.js');
}

interface Job {
  id: number;
  request: TransformRequest;
  transfer: ArrayBuffer[];
  options: RunOptions;
  queuedAt: number;
  startedAt?: number;
  /** Fires at the pool's time limit once the job runs. */
  timer?: NodeJS.Timeout;
  resolve: (output: TransformOutput) => void;
  reject: (err: unknown) => void;
  onAbort?: () => void;
}

interface PoolThread {
  thread: Thread;
  job?: Job;
  /** Stopped on purpose, or already counted as crashed: its exit says nothing more. */
  retired: boolean;
}

/**
 * Worker threads that run the CPU part of tasks (decode, operation, encode), each one job at a
 * time; more jobs than threads wait in a queue, first come first served. A thread that dies is
 * replaced, and its job fails with ThreadCrashedError (ThreadOutOfMemoryError at its heap limit).
 * Decoding cannot be interrupted: a job whose signal aborts, or that runs past the time limit, is
 * dropped by stopping its thread, which is replaced, so the core is free at once rather than when
 * the image is done.
 */
export class TransformPool implements TransformRunner {
  private readonly threads: PoolThread[] = [];
  private readonly queue: Job[] = [];
  private readonly script: string;
  private nextId = 1;
  private closed = false;
  private exited = 0;
  private spawned = 0;
  /** Replaced threads on their way out, awaited by close(). */
  private readonly stopping = new Set<Promise<unknown>>();

  constructor(private readonly options: TransformPoolOptions) {
    this.script = options.script ?? defaultThreadScript();
    if (!fs.existsSync(this.script)) {
      throw new Error(`the transform thread's script ${this.script} is missing: build the worker first (npm run build)`);
    }
    for (let i = 0; i < options.size; i++) this.threads.push(this.spawn());
  }

  get size(): number {
    return this.threads.length;
  }

  /** Jobs in threads at this moment. */
  get running(): number {
    return this.threads.filter((pooled) => pooled.job).length;
  }

  /** Threads started and not yet exited, replaced ones included until they are gone. */
  get liveThreads(): number {
    return this.spawned - this.exited;
  }

  /** The thread ids of the pool's threads (a replaced thread has a new one). */
  get threadIds(): number[] {
    return this.threads.map((pooled) => pooled.thread.threadId);
  }

  /**
   * Transforms `job.source` in a thread; rejects with the error the transform met (an
   * ImageDecodeError or PermanentWorkError with its readable message), ThreadCrashedError, or
   * the signal's reason.
   */
  run(job: TransformJob, options: RunOptions = {}): Promise<TransformOutput> {
    if (this.closed) return Promise.reject(new Error('the transform pool is closed'));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const { view, transfer } = transferable(job.source);
    const id = this.nextId++;
    return new Promise<TransformOutput>((resolve, reject) => {
      const queued: Job = {
        id,
        request: { id, source: view, contentType: job.contentType, op: job.op, ...(job.params ? { params: job.params } : {}) },
        transfer,
        options,
        queuedAt: performance.now(),
        resolve,
        reject,
      };
      if (options.signal) {
        queued.onAbort = () => this.drop(queued, options.signal!.reason);
        options.signal.addEventListener('abort', queued.onAbort, { once: true });
      }
      this.queue.push(queued);
      this.dispatch();
    });
  }

  /** Stops every thread, replaced ones included; jobs still queued or running fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Error('the transform pool was closed');
    for (const job of this.queue.splice(0)) this.settle(job, () => job.reject(closing));
    await Promise.all(
      this.threads.map(async (pooled) => {
        pooled.retired = true;
        if (pooled.job) this.settle(pooled.job, (job) => job.reject(closing));
        await pooled.thread.terminate();
      }),
    );
    await Promise.all(this.stopping);
  }

  private spawn(): PoolThread {
    const workerData: ThreadData = { codec: this.options.codec };
    const thread = new Thread(this.script, { workerData, resourceLimits: this.options.resourceLimits });
    const pooled: PoolThread = { thread, retired: false };
    this.spawned += 1;
    thread.on('message', (message: ThreadMessage) => this.onMessage(pooled, message));
    thread.on('error', (err) => this.onDeath(pooled, err));
    thread.on('exit', (code) => {
      this.exited += 1;
      this.onDeath(pooled, new Error(`it exited with code ${code}`));
    });
    return pooled;
  }

  private dispatch(): void {
    for (const pooled of this.threads) {
      if (this.queue.length === 0) return;
      if (pooled.job || pooled.retired) continue;
      const job = this.queue.shift()!;
      pooled.job = job;
      job.startedAt = performance.now();
      const { timeoutMs } = this.options;
      if (timeoutMs !== undefined) {
        job.timer = setTimeout(() => this.drop(job, new TransformTimeoutError(timeoutMs)), timeoutMs);
      }
      pooled.thread.postMessage(job.request, job.transfer);
    }
  }

  private onMessage(pooled: PoolThread, message: ThreadMessage): void {
    const job = pooled.job;
    if (!job || job.id !== message.id) return;
    if (message.type === 'encoding') {
      job.options.onEncoding?.();
      return;
    }
    pooled.job = undefined;
    if (message.type === 'done') {
      const output = { bytes: asBuffer(message.bytes), timings: message.timings, queuedMs: job.startedAt! - job.queuedAt };
      this.settle(job, () => job.resolve(output));
    } else {
      this.settle(job, () => job.reject(fromThreadError(message.error)));
    }
    this.dispatch();
  }

  /** A thread died that was not stopped on purpose: replaced, and its job given up. */
  private onDeath(pooled: PoolThread, cause: Error): void {
    if (pooled.retired) return;
    const job = pooled.job;
    this.replace(pooled);
    const message = `the image thread ${pooled.thread.threadId} died: ${cause.message}`;
    const outOfMemory = (cause as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
    const error = outOfMemory
      ? new ThreadOutOfMemoryError(this.options.resourceLimits?.maxOldGenerationSizeMb, { cause })
      : new ThreadCrashedError(message, { cause });
    const fate = outOfMemory ? '; its task fails' : '; its task is given back';
    this.options.logger?.error(message + (job ? fate : ''), cause);
    if (job) this.settle(job, () => job.reject(error));
    this.dispatch();
  }

  /** The job is no longer wanted: out of the queue, or its thread stopped. */
  private drop(job: Job, reason: unknown): void {
    const queuedAt = this.queue.indexOf(job);
    if (queuedAt >= 0) this.queue.splice(queuedAt, 1);
    const pooled = this.threads.find((candidate) => candidate.job === job);
    if (pooled) {
      this.replace(pooled);
      this.dispatch();
    }
    this.settle(job, () => job.reject(reason));
  }

  /** Stops a thread and puts a new one in its place (none once the pool is closed). */
  private replace(pooled: PoolThread): void {
    pooled.retired = true;
    pooled.job = undefined;
    const stopped = pooled.thread.terminate();
    this.stopping.add(stopped);
    void stopped.finally(() => this.stopping.delete(stopped));
    const index = this.threads.indexOf(pooled);
    if (index >= 0 && !this.closed) this.threads[index] = this.spawn();
  }

  private settle(job: Job, outcome: (job: Job) => void): void {
    clearTimeout(job.timer);
    if (job.onAbort) job.options.signal?.removeEventListener('abort', job.onAbort);
    outcome(job);
  }
}
