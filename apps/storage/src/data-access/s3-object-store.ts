import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ImageTypeSchema, StorageKeySchema, type ObjectRef, type StorageState } from '@pixelmill/contracts';
import { AppError } from '@pixelmill/kit';
import {
  admitObject,
  digestOf,
  ObjectExistsError,
  type IncomingObject,
  type ObjectInfo,
  type ObjectStore,
  type ObjectWriteOptions,
  type OpenedObject,
  type StoredObjectInfo,
} from './object-store';

/**
 * Size of the parts of a multipart upload: the least S3 takes. An upload holds one part in
 * memory (gathered, then sent, then the next), whatever the object's size; an object smaller
 * than a part goes up in one PUT.
 */
export const S3_PART_BYTES = 5 * 1024 * 1024;
/** Keys one `DeleteObjects` request may name, S3's limit. */
const S3_MAX_DELETE_KEYS = 1000;
/** Time to open a connection to the endpoint; an endpoint out of reach fails a call after it. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Connections kept to the endpoint: every object read streaming to a client holds one. */
const MAX_SOCKETS = 128;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export interface S3ClientOptions {
  /** Unset: AWS itself. */
  endpoint?: string;
  region: string;
  /** Unset: the SDK's default chain (environment, shared files, instance or task role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Longest a call may wait for its answer, and a connection stay silent, in ms. */
  requestTimeoutMs?: number;
}

/**
 * A client that works with S3 and the servers that speak its protocol (MinIO, R2, Ceph):
 * buckets in the path, not the host name; checksums only where an operation requires them
 * (the newer default checksums are not understood everywhere).
 */
export function createS3Client(options: S3ClientOptions): S3Client {
  return new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // A call that gets no answer in time, or a connection silent that long, fails (a 503), rather than hanging.
      ...(options.requestTimeoutMs
        ? { requestTimeout: options.requestTimeoutMs, throwOnRequestTimeout: true, socketTimeout: options.requestTimeoutMs }
        : {}),
      httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
    },
  });
}

export interface S3ObjectStoreOptions {
  client: S3Client;
  bucket: string;
  /** Create the bucket when it is missing (at the readiness check); otherwise it must exist. */
  createBucket?: boolean;
  /** Part size of multipart uploads, S3_PART_BYTES or more. */
  partBytes?: number;
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
}

const statusOf = (err: unknown): number | undefined => (err as SdkError | null)?.$metadata?.httpStatusCode;
const nameOf = (err: unknown): string | undefined => (err as SdkError | null)?.name;
/** A HEAD has no body to name its error: any 404 there is a missing object. */
const isMissing = (err: unknown): boolean => nameOf(err) === 'NoSuchKey' || nameOf(err) === 'NotFound';
/** Another write won the key between our check and our write (`If-None-Match: *`). */
const isTaken = (err: unknown): boolean =>
  statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed' || nameOf(err) === 'ConditionalRequestConflict';

/** Whether an error came from the object store or the way to it (not from our own code). */
function isStoreFailure(err: unknown): boolean {
  const e = err as SdkError | null;
  if (!e || typeof e !== 'object') return false;
  return (
    e.$metadata !== undefined ||
    e.$fault !== undefined ||
    NETWORK_CODES.has(e.code ?? '') ||
    e.name === 'TimeoutError' ||
    e.name === 'CredentialsProviderError'
  );
}

/** SHA-256 (hex) of a stream's bytes. */
async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `bytes <first>-<last>/<size>` as numbers. */
function parseContentRange(header: string | undefined): { start: number; end: number; size: number } | undefined {
  const match = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  return match ? { start: Number(match[1]), end: Number(match[2]), size: Number(match[3]) } : undefined;
}

/**
 * Image bytes in an S3-compatible bucket, under `inProgress/<key>` and `finished/<key>`, each
 * with its image type as its Content-Type (S3 keeps the size itself).
 *
 * Whole or nothing: a write goes up through lib-storage's `Upload`, one PUT for an object
 * smaller than a part, a multipart upload otherwise; S3 makes an object visible only when its
 * PUT or its multipart completion succeeds, and a failed upload is aborted (its parts never
 * become an object). Never replaced: a write first asks whether the key holds an object
 * (HEAD), and sends `If-None-Match: *`, so a server that supports it (AWS, MinIO, R2, Ceph)
 * refuses a write that lost a race to another; a server that ignores it (s3rver) still
 * refuses every write that comes after another, only two at the very same time are not told
 * apart. Either way the bytes already stored are compared with the new ones by SHA-256: the
 * same bytes are a success.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly createBucket: boolean;
  private readonly partBytes: number;

  constructor(options: S3ObjectStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.createBucket = options.createBucket ?? false;
    this.partBytes = Math.max(options.partBytes ?? S3_PART_BYTES, S3_PART_BYTES);
  }

  async putStream(state: StorageState, key: string, source: Readable, options: ObjectWriteOptions): Promise<StoredObjectInfo> {
    const Key = this.keyOf(state, key);
    // Always hashed: a write that meets an object under its key compares the two by SHA-256.
    const [incoming, stored] = await Promise.all([
      admitObject(source, options, { hash: true, head: options.digest ?? false }),
      this.stat(state, key),
    ]);
    const body = incoming.body;
    const written = (): StoredObjectInfo => ({
      size: incoming.size(),
      contentType: incoming.contentType,
      ...(options.digest ? { digest: digestOf(incoming) } : {}),
    });
    if (stored) {
      // Read to its end (checked and hashed as it passes), then compared with what is stored.
      await pipeline(body, new Writable({ write: (_chunk, _encoding, done) => done() }));
      await this.settle(state, key, incoming);
      return written();
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body, ContentType: incoming.contentType, IfNoneMatch: '*' },
      partSize: this.partBytes,
      // One part at a time: the next is read from the client once this one is stored.
      queueSize: 1,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      // The source's own failure (a limit, a client gone) says what went wrong, not the abort that followed it.
      if (body.errored) throw body.errored;
      if (!isTaken(err)) {
        body.destroy();
        throw this.failure(err, `store ${Key}`);
      }
      // Refused by `If-None-Match: *` once the whole body was sent: the bytes are all hashed.
      await this.settle(state, key, incoming);
    }
    return written();
  }

  /**
   * A write met an object under its key: a success when it holds the same bytes, else
   * ObjectExistsError. The body has been read to its end (hashed) first.
   */
  private async settle(state: StorageState, key: string, incoming: IncomingObject): Promise<void> {
    const stored = await this.open(state, key);
    // Gone again (the other write failed, or a delete came between): the caller may try again.
    if (!stored) throw new AppError('unavailable', 503, `another write of ${state}/${key} was under way; try again`);
    if (stored.size !== incoming.size()) {
      stored.stream.destroy();
      throw new ObjectExistsError(state, key);
    }
    if ((await sha256Of(stored.stream)) !== incoming.sha256()) throw new ObjectExistsError(state, key);
  }

  async open(state: StorageState, key: string, range?: { start: number; end?: number }): Promise<OpenedObject | undefined> {
    const Key = this.keyOf(state, key);
    let answer;
    try {
      answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}) }),
      );
    } catch (err) {
      if (isMissing(err)) return undefined;
      // A range that starts past the end is not served: the whole object is.
      if (range && statusOf(err) === 416) return this.open(state, key);
      throw this.failure(err, `read ${Key}`);
    }
    const stream = answer.Body;
    if (!(stream instanceof Readable)) throw new Error(`the S3 client answered ${Key} without a Node stream`);
    try {
      const contentType = this.imageTypeOf(answer.ContentType, Key);
      // A server may send the whole object for a range it does not serve: then there is no Content-Range.
      const served = range ? parseContentRange(answer.ContentRange) : undefined;
      const size = served?.size ?? answer.ContentLength;
      if (size === undefined) throw new Error(`the object store answered ${Key} without its length`);
      return { size, contentType, stream, ...(served ? { range: { start: served.start, end: served.end } } : {}) };
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  async stat(state: StorageState, key: string): Promise<ObjectInfo | undefined> {
    const Key = this.keyOf(state, key);
    try {
      const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      if (answer.ContentLength === undefined) throw new Error(`the object store answered ${Key} without its length`);
      return { size: answer.ContentLength, contentType: this.imageTypeOf(answer.ContentType, Key) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.failure(err, `look up ${Key}`);
    }
  }

  async delete(state: StorageState, key: string): Promise<boolean> {
    // S3 answers a delete the same whether the object was there or not: asked first.
    if (!(await this.stat(state, key))) return false;
    const Key = this.keyOf(state, key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
      return true;
    } catch (err) {
      throw this.failure(err, `delete ${Key}`);
    }
  }

  /**
   * One `DeleteObjects` request per S3_MAX_DELETE_KEYS objects. S3 answers a key that held nothing
   * as deleted, the same as one it deleted; any other key it names in `Errors` fails the call.
   */
  async deleteMany(objects: readonly ObjectRef[]): Promise<number> {
    const Keys = objects.map(({ state, key }) => this.keyOf(state, key));
    for (let start = 0; start < Keys.length; start += S3_MAX_DELETE_KEYS) {
      const chunk = Keys.slice(start, start + S3_MAX_DELETE_KEYS);
      let answer;
      try {
        answer = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }),
        );
      } catch (err) {
        throw this.failure(err, `delete ${chunk.length} objects`);
      }
      // A server that names a missing key (not S3 itself) has nothing left of it either.
      const failed = answer.Errors?.find((error) => error.Code !== 'NoSuchKey');
      if (failed) throw this.unavailable(`delete ${String(failed.Key)}`, failed.Code ?? 'error');
    }
    return objects.length;
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!this.createBucket || !isMissing(err)) throw this.failure(err, `find the bucket ${this.bucket}`);
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket })).catch((created: unknown) => {
        // Another instance made it first.
        if (nameOf(created) !== 'BucketAlreadyOwnedByYou') throw this.failure(created, `create the bucket ${this.bucket}`);
      });
    }
  }

  close(): void {
    this.client.destroy();
  }

  /** Keys are checked by the contract; checked again so that a key never names another state's object. */
  private keyOf(state: StorageState, key: string): string {
    if (!StorageKeySchema.safeParse(key).success) throw new Error(`key ${JSON.stringify(key)} is not a storage key`);
    return `${state}/${key}`;
  }

  private imageTypeOf(contentType: string | undefined, Key: string) {
    const parsed = ImageTypeSchema.safeParse(contentType);
    if (!parsed.success) throw new Error(`stored object ${Key} is not an image (Content-Type ${String(contentType)})`);
    return parsed.data;
  }

  /** The object store out of reach, or failing, is a 503 for the caller (it may try again); anything else stays as it is. */
  private failure(err: unknown, doing: string): unknown {
    if (!isStoreFailure(err)) return err;
    const e = err as SdkError;
    return this.unavailable(doing, e.code ?? e.name ?? 'error');
  }

  private unavailable(doing: string, reason: string): AppError {
    return new AppError('unavailable', 503, `the object store could not ${doing} in bucket ${this.bucket} (${reason})`);
  }
}
