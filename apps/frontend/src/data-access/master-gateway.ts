import {
  detectImageType,
  ImageTypeSchema,
  masterContract,
  type Accepted,
  type ReadyCheckState,
  type Route,
  type TaskId,
  type TaskStatus,
  type UsageReport,
} from '@pixelmill/contracts';
import type { Readable } from 'node:stream';
import {
  AppError,
  errorBodyMessage,
  expectStatus,
  IMAGE_TYPE_BYTES,
  peekStream,
  serviceReadiness,
  type CallResult,
  type ContractClient,
} from '@pixelmill/kit';
import type { CheckedUpload } from '../domain/image-upload';

/** Time on top of a long poll for master to answer it. */
const LONG_POLL_MARGIN_MS = 10_000;

export interface ImageResult {
  /** The bytes as they come from master: passed on, never held whole in memory. */
  stream: Readable;
  contentType: string;
  size?: string;
}

/** Master's error message, for answers that are the client's fault and are passed on as they are. */
const messageOf = (result: CallResult<Route>): string => errorBodyMessage(result, `master answered ${result.status}`);

/**
 * The result is served from our origin, so only an image type is passed on: anything else
 * (say text/html) could run as a page of ours.
 */
function imageContentType(declared: string | undefined, bytes: Buffer): string {
  const type = ImageTypeSchema.safeParse(declared?.split(';')[0]?.trim().toLowerCase());
  return type.success ? type.data : (detectImageType(bytes.subarray(0, IMAGE_TYPE_BYTES)) ?? 'application/octet-stream');
}

// Also the answer for another key's image: to a stranger, someone else's image does not exist.
const unknownImage = (id: TaskId): AppError => new AppError('not_found', 404, `no image with id ${id}`);
const expiredImage = (id: TaskId): AppError =>
  new AppError('gone', 410, `image ${id} has expired: results are deleted after the retention time`);

export interface Submission {
  /** Whose task it becomes (the owner id of an API key); undefined without keys. */
  owner?: string;
  /** Makes the call safe to repeat: master answers a repeated key with the first call's task. */
  idempotencyKey: string;
}

/** The frontend's only way to master: the calls it makes, with master's answers mapped to ours. */
export interface MasterGatewayOptions {
  /**
   * How long a streamed upload may take to reach master and be answered: its bytes come at the
   * client's pace, so the client's time to send them counts too. The client's default otherwise.
   */
  streamedUploadTimeoutMs?: number;
}

export class MasterGateway {
  constructor(
    private readonly client: ContractClient,
    private readonly options: MasterGatewayOptions = {},
  ) {}

  async submit(upload: CheckedUpload, { owner, idempotencyKey }: Submission): Promise<Accepted> {
    const result = await this.client.call(masterContract.newImage, {
      query: { op: upload.op, ...upload.params, owner },
      headers: { 'idempotency-key': idempotencyKey },
      ...('bytes' in upload
        ? { body: upload.bytes }
        : { body: upload.stream, contentLength: upload.length, timeoutMs: this.options.streamedUploadTimeoutMs }),
      contentType: upload.contentType,
      // With the key, an answer lost on the way back can be asked for again without a second task.
      // A streamed upload cannot: its bytes are gone once sent, and the client gets the 503 and
      // sends it again with its own key.
      retry: true,
    });
    switch (result.status) {
      case 202:
        return result.body;
      case 400:
        throw new AppError('bad_request', 400, messageOf(result));
      case 413:
        throw new AppError('payload_too_large', 413, messageOf(result));
      case 415:
        throw new AppError('unsupported_media_type', 415, messageOf(result));
      case 422:
        throw new AppError('unprocessable_entity', 422, messageOf(result));
      case 429:
        throw new AppError('quota_exceeded', 429, messageOf(result));
      case 503:
        throw new AppError('unavailable', 503, messageOf(result));
    }
  }

  /** What an owner has stored and its cap (no owner: the clients without an API key). */
  async usage(owner?: string): Promise<UsageReport> {
    return expectStatus(await this.client.call(masterContract.usage, { query: { owner } }), 200, 'master').body;
  }

  /**
   * The task's state, when `owner` owns it (or no owner is given and keys are off). With
   * waitMs, master answers once the task is finished or failed, or when waitMs has passed.
   */
  async status(id: TaskId, owner?: string, waitMs = 0, signal?: AbortSignal): Promise<TaskStatus> {
    const result = await this.client.call(masterContract.isReady, {
      query: { id, owner, waitMs },
      signal,
      ...(waitMs > 0 ? { timeoutMs: waitMs + LONG_POLL_MARGIN_MS } : {}),
    });
    switch (result.status) {
      case 200:
        return result.body;
      case 404:
        throw unknownImage(id);
      case 410:
        throw expiredImage(id);
      case 400:
        throw new AppError('bad_request', 400, messageOf(result));
    }
  }

  async result(id: TaskId, owner?: string): Promise<ImageResult> {
    const result = await this.client.callStream(masterContract.get, { query: { id, owner } });
    if (result.stream !== undefined) {
      const declared = result.headers['content-type'];
      // Only a label that is not an image type costs a look at the first bytes.
      const labelled = ImageTypeSchema.safeParse(declared?.split(';')[0]?.trim().toLowerCase()).success;
      const contentType = imageContentType(declared, labelled ? Buffer.alloc(0) : await peekStream(result.stream, IMAGE_TYPE_BYTES));
      return { stream: result.stream, contentType, size: result.headers['content-length'] };
    }
    switch (result.status) {
      case 404:
        throw unknownImage(id);
      case 410:
        throw expiredImage(id);
      case 409: {
        // Master's wording is its own; the user needs to know where the image stands.
        const { state, error } = await this.status(id, owner);
        const message =
          state === 'failed'
            ? `image ${id} failed and has no result: ${error ?? 'no reason given'}`
            : `image ${id} is not finished yet (state: ${state})`;
        throw new AppError('conflict', 409, message, { state });
      }
      case 400:
        throw new AppError('bad_request', 400, messageOf(result));
      default:
        throw new AppError('unavailable', 503, `master answered ${result.status} without the image`);
    }
  }

  /** Whether master answers and accepts our token, for /readyz; throws when it cannot be reached. */
  ping(): Promise<ReadyCheckState> {
    return serviceReadiness(this.client);
  }
}
