import type { Readable } from 'node:stream';
import { resultKey, storageContract, type ImageType, type StorageState } from '@pixelmill/contracts';
import { downstreamError, expectStatus, IMAGE_HEAD_BYTES, peekStream, signedObjectUrl, type ContractClient } from '@pixelmill/kit';

export interface ImageStoreGatewayOptions {
  /** Where workers reach storage: the address in the signed URLs. */
  publicUrl: () => Promise<string>;
  /** Signs the URLs handed to workers; unsigned URLs when storage is open. */
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

/**
 * Master's only way to storage: the source of each task under `inProgress/<id>`, each attempt's
 * result under `finished/<id>_<attempt>`, and the signed URLs that let a worker read and write
 * exactly those, without a storage credential.
 */
export class ImageStoreGateway {
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
    await this.delete('inProgress', id);
  }

  async deleteResult(id: string, attempt: number): Promise<void> {
    await this.delete('finished', resultKey(id, attempt));
  }

  /** The result of an attempt, streamed; undefined when none is stored. */
  async readResult(id: string, attempt: number): Promise<StoredImage | undefined> {
    const file = await this.client.callStream(storageContract.get, { params: { state: 'finished', key: resultKey(id, attempt) } });
    if (file.status === 404) return undefined;
    if (file.stream === undefined) throw downstreamError(file, 'storage');
    return { stream: file.stream, size: file.headers['content-length'] };
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

  private async delete(state: StorageState, key: string): Promise<void> {
    const result = await this.client.call(storageContract.delete, { params: { state, key } });
    if (result.status !== 404) expectStatus(result, 204, 'storage');
  }
}
