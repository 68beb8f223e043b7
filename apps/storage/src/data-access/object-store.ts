import { createHash, type Hash } from 'node:crypto';
import { finished, Transform, type Readable } from 'node:stream';
import type { ImageType, ObjectRef, StorageState } from '@pixelmill/contracts';
import { IMAGE_HEAD_BYTES, IMAGE_TYPE_BYTES, imageFactsOf, peekStream, type ImageFacts } from '@pixelmill/kit';

export const STATE_FOLDERS: readonly StorageState[] = ['inProgress', 'finished'];

export class StreamLimitError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the body is larger than ${maxBytes} bytes`);
    this.name = 'StreamLimitError';
  }
}

export class EmptyBodyError extends Error {
  constructor() {
    super('empty body');
    this.name = 'EmptyBodyError';
  }
}

/** An object is stored under its key already, with other bytes: stored objects are never replaced. */
export class ObjectExistsError extends Error {
  constructor(
    readonly state: StorageState,
    readonly key: string,
  ) {
    super(`${state}/${key} is stored already, with other bytes`);
    this.name = 'ObjectExistsError';
  }
}

export interface ObjectInfo {
  size: number;
  contentType: ImageType;
}

export interface OpenedObject extends ObjectInfo {
  stream: Readable;
  /** The bytes the stream holds, when a range was asked for and served (inclusive). */
  range?: { start: number; end: number };
}

export interface ObjectWriteOptions {
  /** More bytes than this fail the write with StreamLimitError. */
  maxBytes: number;
  /** Given the first bytes, answers their image type or throws (the write fails with that error). */
  check: (head: Buffer) => ImageType;
  /** Hash the bytes and read their head as they pass (the answer's `digest`), for a receipt. */
  digest?: boolean;
}

/** What a write saw of the bytes as they passed: no second read of the stored object. */
export interface WriteDigest {
  /** SHA-256 (hex) of all the bytes. */
  sha256: string;
  /** What the first IMAGE_HEAD_BYTES say: the type by magic bytes, the declared dimensions. */
  facts: ImageFacts;
}

export interface StoredObjectInfo extends ObjectInfo {
  /** With `digest` asked for. */
  digest?: WriteDigest;
}

/**
 * Image bytes under `inProgress/<key>` and `finished/<key>`, in a folder or a bucket. Every
 * implementation keeps the same promises, which one conformance suite checks on each:
 * - bytes stream in and out, never held whole beyond a bounded buffer;
 * - an object appears whole or not at all: a refused, broken or failed write leaves nothing;
 * - a key is never given other bytes (ObjectExistsError); the same bytes again are a success,
 *   so a retried write does no harm;
 * - the type is sniffed from the first bytes and kept with the object.
 * A backend out of reach fails a call with AppError `unavailable` (503).
 */
export interface ObjectStore {
  /** `folder` or `s3`: where the bytes are; `/readyz` names its check after it. */
  readonly kind: 'folder' | 's3';
  putStream(state: StorageState, key: string, source: Readable, options: ObjectWriteOptions): Promise<StoredObjectInfo>;
  /**
   * An object's size, type and bytes as a stream; undefined when there is none. With `range`,
   * the bytes from `start` to `end` (inclusive, cut at the object's end), unless it starts past
   * the end: then all of them.
   */
  open(state: StorageState, key: string, range?: { start: number; end?: number }): Promise<OpenedObject | undefined>;
  stat(state: StorageState, key: string): Promise<ObjectInfo | undefined>;
  /** True when the object existed. */
  delete(state: StorageState, key: string): Promise<boolean>;
  /**
   * Deletes every named object; one not stored is no failure, so a call made again succeeds.
   * Answers how many of them are no longer stored: all, since it resolves only once each is gone.
   */
  deleteMany(objects: readonly ObjectRef[]): Promise<number>;
  /** Resolves when the store can take writes (readiness). */
  ping(): Promise<void>;
  /** Releases what the store holds open; the store is not used afterwards. */
  close(): void;
}

/** The bytes of a write, checked as they arrive. */
export interface IncomingObject {
  contentType: ImageType;
  /**
   * The source's bytes, counted (failing with StreamLimitError past the limit) and hashed when
   * asked to; it fails too when the source does. Its failure or destruction leaves the source
   * undestroyed: the request is still there to be answered (413, 503), its rest unread.
   */
  body: Readable;
  /** Bytes that went through so far. */
  size(): number;
  /** SHA-256 (hex) of the bytes that went through; only with `hash`. */
  sha256(): string;
  /** The first IMAGE_HEAD_BYTES that went through (all of a smaller body); only with `head`. */
  head(): Buffer;
}

/**
 * Starts a write: reads the first bytes and asks `check` for their type before anything is
 * stored (EmptyBodyError when there are none), then hands back the stage the body must pass
 * through. `joinBytes` gathers small chunks into writes of about that size (a file's writes are
 * each a trip to libuv's thread pool, which costs more than the copy).
 */
export async function admitObject(
  source: Readable,
  options: ObjectWriteOptions,
  { joinBytes = 0, hash = false, head: keepHead = false }: { joinBytes?: number; hash?: boolean; head?: boolean } = {},
): Promise<IncomingObject> {
  const head = await peekStream(source, IMAGE_TYPE_BYTES);
  if (head.length === 0) throw new EmptyBodyError();
  const contentType = options.check(head);
  const digest: Hash | undefined = hash ? createHash('sha256') : undefined;
  let sha256: string | undefined;
  let size = 0;
  // Copies: the chunks themselves move on to the sink.
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const takePending = (): Buffer => {
    const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return joined;
  };
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > options.maxBytes) {
        done(new StreamLimitError(options.maxBytes));
        return;
      }
      digest?.update(chunk);
      if (keepHead && headLength < IMAGE_HEAD_BYTES) {
        const part = Buffer.from(chunk.subarray(0, IMAGE_HEAD_BYTES - headLength));
        headChunks.push(part);
        headLength += part.length;
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      done(null, pendingBytes >= joinBytes ? takePending() : undefined);
    },
    flush(done) {
      done(null, pendingBytes > 0 ? takePending() : undefined);
    },
  });
  // Not `pipeline`: it would destroy the source on the meter's failure, and with a request its
  // answer (a refused request would look like a client that hung up).
  source.pipe(meter);
  finished(source, (err) => {
    if (err && !meter.destroyed) meter.destroy(err);
  });
  return {
    contentType,
    body: meter,
    size: () => size,
    sha256: () => {
      if (!digest) throw new Error('the write was admitted without hashing');
      sha256 ??= digest.digest('hex');
      return sha256;
    },
    head: () => {
      if (!keepHead) throw new Error('the write was admitted without keeping the head');
      return Buffer.concat(headChunks, headLength);
    },
  };
}

/** The digest of a write admitted with hash and head, once its bytes have all gone through. */
export function digestOf(incoming: IncomingObject): WriteDigest {
  return { sha256: incoming.sha256(), facts: imageFactsOf(incoming.head()) };
}
