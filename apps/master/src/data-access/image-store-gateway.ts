import type { Readable } from 'node:stream';
import { MAX_DELETIONS, resultKey, storageContract, type ImageType, type ObjectRef, type StorageReceipt } from '@pixelmill/contracts';
import {
  downstreamError,
  expectStatus,
  forEachBounded,
  IMAGE_HEAD_BYTES,
  imageFactsOf,
  peekStream,
  receiptProblem,
  signedObjectUrl,
  type ContractClient,
  type ImageFacts,
} from '@pixelmill/kit';

export interface ImageStoreGatewayOptions {
  /** Where workers reach storage: the address in the signed URLs. */
  publicUrl: () => Promise<string>;
  /**
   * Signs the URLs handed to workers (unsigned URLs when storage is open) and checks storage's
   * receipts; without it a receipt cannot be checked, and each result is read back instead.
   */
  signingKey?: string;
  /** How long a source may take to reach storage as it streams in; the client's timeout otherwise. */
  sourceUploadTimeoutMs?: number;
}

export interface StoredImage {
  /** The bytes as storage sends them: passed on, never held whole. */
  stream: Readable;
  /** Content-Length as storage told it, when it did. */
  size?: string;
}

export interface ImageHead {
  /** The first bytes (all of them for a small image). */
  head: Buffer;
  /** The whole image's size in bytes. */
  size: number;
}

/** A stored result as storage knows it: its size and what its head says. */
export interface StoredResult extends ImageFacts {
  size: number;
}

/** What master learns of an attempt's result, from storage's receipt or from storage itself. */
export type ResultLookup =
  | { kind: 'stored'; result: StoredResult }
  | { kind: 'missing' }
  /** The receipt does not vouch for this attempt's result: forged, altered, expired, or another object's. */
  | { kind: 'refused'; reason: string };

/** Deletes in flight at once against a storage without `deleteMany`, one request per object. */
const SINGLE_DELETES_IN_FLIGHT = 8;

/** Where a task's source is stored. */
export const sourceObject = (id: string): ObjectRef => ({ state: 'inProgress', key: id });
/** Where an attempt's result is stored. */
export const resultObject = (id: string, attempt: number): ObjectRef => ({ state: 'finished', key: resultKey(id, attempt) });
/** Every object a task of `attempts` attempts may have: its source, and each attempt's result (only the last one's was checked). */
export const taskObjects = (id: string, attempts: number): ObjectRef[] => [
  sourceObject(id),
  ...Array.from({ length: attempts }, (_, index) => resultObject(id, index + 1)),
];

/**
 * Master's only way to storage: the source of each task under `inProgress/<id>`, each attempt's
 * result under `finished/<id>_<attempt>`, and the signed URLs that let a worker read and write
 * exactly those, without a storage credential.
 */
export class ImageStoreGateway {
  /**
   * Set once storage answered 404 to `deleteMany` (a version older than it): every deletion is then
   * one request per object until master restarts, rather than a refused call first on every sweep.
   */
  private deletesOneByOne = false;

  constructor(
    private readonly client: ContractClient,
    private readonly options: ImageStoreGatewayOptions,
  ) {}

  /**
   * Stores a task's source as its bytes arrive (`length` when declared, else sent chunked). A
   * stream is sent once: a broken hop is an error (503), for the uploader to send again.
   */
  async putSource(id: string, bytes: Readable | Buffer, contentType: ImageType, length?: number): Promise<void> {
    const result = await this.client.call(storageContract.put, {
      params: { state: 'inProgress', key: id },
      body: bytes,
      contentType,
      contentLength: length,
      // The bytes come at the uploader's pace: its time to send them counts too.
      timeoutMs: this.options.sourceUploadTimeoutMs,
    });
    expectStatus(result, 201, 'storage');
  }

  /** Deleting what is gone already is fine: a sweep cut short is simply done again. */
  async deleteSource(id: string): Promise<void> {
    await this.delete(sourceObject(id));
  }

  /**
   * Deletes the objects, MAX_DELETIONS a request; those gone already are fine, as with
   * `deleteSource`. A storage that has no `deleteMany` gets one request per object.
   */
  async deleteObjects(objects: readonly ObjectRef[]): Promise<void> {
    let start = 0;
    for (; start < objects.length && !this.deletesOneByOne; start += MAX_DELETIONS) {
      const result = await this.client.call(storageContract.deleteMany, { body: { objects: objects.slice(start, start + MAX_DELETIONS) } });
      if (result.status === 404) {
        this.deletesOneByOne = true;
        break;
      }
      expectStatus(result, 200, 'storage');
    }
    // What no deleteMany took: all of it, against a storage known to have none.
    await forEachBounded(objects.slice(start), SINGLE_DELETES_IN_FLIGHT, (object) => this.delete(object));
  }

  /** Whether a task's source is still stored. */
  async sourceStored(id: string): Promise<boolean> {
    const result = await this.client.call(storageContract.head, { params: sourceObject(id) });
    if (result.status === 200) return true;
    if (result.status === 404) return false;
    throw downstreamError(result, 'storage');
  }

  /** The result of an attempt, streamed; undefined when none is stored. */
  async readResult(id: string, attempt: number): Promise<StoredImage | undefined> {
    const file = await this.client.callStream(storageContract.get, { params: { state: 'finished', key: resultKey(id, attempt) } });
    if (file.status === 404) return undefined;
    if (file.stream === undefined) throw downstreamError(file, 'storage');
    return { stream: file.stream, size: file.headers['content-length'] };
  }

  /**
   * An attempt's result: from storage's receipt when the worker handed one on and it can be
   * checked (signed with the stack's key, this attempt's key, unexpired: then storage is not
   * asked at all), else read back from storage (its head and size). A receipt that does not hold
   * is refused, never passed over for the read back: whoever sends one must send a true one.
   */
  async storedResult(id: string, attempt: number, receipt?: StorageReceipt): Promise<ResultLookup> {
    const { signingKey } = this.options;
    if (receipt !== undefined && signingKey !== undefined) {
      const reason = receiptProblem(receipt, { state: 'finished', key: resultKey(id, attempt) }, signingKey);
      if (reason !== undefined) return { kind: 'refused', reason };
      const { size, contentType, width, height } = receipt;
      return { kind: 'stored', result: { size, contentType, width, height } };
    }
    const stored = await this.resultHead(id, attempt);
    if (stored === undefined) return { kind: 'missing' };
    return { kind: 'stored', result: { size: stored.size, ...imageFactsOf(stored.head) } };
  }

  /**
   * The first IMAGE_HEAD_BYTES of an attempt's result and its whole size; undefined when none is
   * stored. Only the head is asked for: the rest of a large result is not read off the disk and sent.
   */
  async resultHead(id: string, attempt: number): Promise<ImageHead | undefined> {
    const file = await this.client.callStream(storageContract.get, {
      params: { state: 'finished', key: resultKey(id, attempt) },
      headers: { range: `bytes=0-${IMAGE_HEAD_BYTES - 1}` },
    });
    if (file.status === 404) return undefined;
    if (file.stream === undefined) throw downstreamError(file, 'storage');
    // A 206 names the whole size after the slash of its Content-Range.
    const size = Number(file.status === 206 ? /\/(\d+)$/.exec(file.headers['content-range'] ?? '')?.[1] : file.headers['content-length']);
    try {
      return { head: await peekStream(file.stream, IMAGE_HEAD_BYTES), size };
    } finally {
      // The part asked for is read to its end, so the connection stays usable; a whole object is cut off.
      if (file.status === 206) file.stream.resume();
      else file.stream.destroy();
    }
  }

  /** A URL to read a task's source until `expires` (ms since the epoch). */
  async sourceUrl(id: string, expires: number): Promise<string> {
    return signedObjectUrl(
      await this.options.publicUrl(),
      { method: 'GET', state: 'inProgress', key: id, expires },
      this.options.signingKey,
    );
  }

  /** A URL to store an attempt's result until `expires`, of at most `maxBytes` when given. */
  async resultUrl(id: string, attempt: number, expires: number, maxBytes?: number): Promise<string> {
    return signedObjectUrl(
      await this.options.publicUrl(),
      { method: 'POST', state: 'finished', key: resultKey(id, attempt), expires, maxBytes },
      this.options.signingKey,
    );
  }

  private async delete(object: ObjectRef): Promise<void> {
    const result = await this.client.call(storageContract.delete, { params: object });
    if (result.status !== 404) expectStatus(result, 204, 'storage');
  }
}
