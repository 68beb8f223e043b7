import { storageContract, type StorageReceipt, type Work } from '@pixelmill/contracts';
import { AppError, ContractClient, errorBodyMessage, type CallInput, type CallResult } from '@pixelmill/kit';
import { PermanentWorkError } from '../domain/work-errors';

/**
 * What the loop needs from storage, through the signed URLs master handed out with the task: the
 * worker holds no storage address nor credential. Anything not listed as a result is thrown and
 * is transient: the task is given back.
 */
export interface StorageApi {
  /** The image to work on. Throws PermanentWorkError when storage has no such image. */
  downloadSource(work: Work, signal: AbortSignal): Promise<Buffer>;
  /**
   * Stores the result, in the source's type; answers storage's receipt for it (none from a storage
   * that runs open), which master takes instead of reading the result back. Throws
   * PermanentWorkError when storage refuses these bytes.
   */
  uploadResult(work: Work, bytes: Buffer, signal: AbortSignal): Promise<StorageReceipt | undefined>;
}

/** The two storage calls a worker makes, through the signed URLs of its task. */
type SignedRoute = typeof storageContract.get | typeof storageContract.put;

/**
 * Calls a signed URL as it is (its path and signature come from master) with storage's own
 * route, so an answer outside storage's contract still fails loudly. Errors name the step, not
 * the URL: its signature is a credential, and the reason of a released task is kept by taskdb.
 */
async function callSigned<R extends SignedRoute>(
  step: string,
  url: string,
  route: R,
  input: CallInput<R>,
  timeoutMs: number,
): Promise<CallResult<R>> {
  try {
    return await new ContractClient({ service: 'storage', baseUrl: new URL(url).origin, timeoutMs }).call(route, {
      ...input,
      url,
    });
  } catch (err) {
    if (err instanceof AppError) throw new AppError(err.code, err.status, `${step}: ${err.message}`, err.details);
    throw err;
  }
}

/** 403: the signature expired or does not match (a late worker, or a clock that is off). */
function signatureRefused(what: string, result: { status: number; body: unknown }): AppError {
  return new AppError(
    'forbidden',
    403,
    `storage refused the signed ${what} URL (expired or invalid; is this host's clock right?): ${errorBodyMessage(result)}`,
  );
}

export function createStorageApi(options: { timeoutMs: number }): StorageApi {
  return {
    async downloadSource(work, signal) {
      const params = { state: 'inProgress' as const, key: work.id };
      const result = await callSigned('download of the source', work.sourceUrl, storageContract.get, { params, signal }, options.timeoutMs);
      if (result.status === 200) return result.body;
      // master stores the image before it creates the task, so a missing image will stay missing.
      if (result.status === 404) throw new PermanentWorkError('the source image is missing from storage');
      if (result.status === 403) throw signatureRefused('source', result);
      throw new AppError('internal', 500, `download of the source answered ${result.status}: ${errorBodyMessage(result)}`);
    },

    async uploadResult(work, bytes, signal) {
      const result = await callSigned(
        'upload of the result',
        work.resultUrl,
        storageContract.put,
        { params: { state: 'finished', key: work.id }, body: bytes, contentType: work.contentType, signal },
        options.timeoutMs,
      );
      if (result.status === 201) return result.body.receipt;
      // Too large, or a type storage does not accept: the same bytes would be refused again.
      if (result.status === 413 || result.status === 415) {
        throw new PermanentWorkError(`storage refused the result: ${errorBodyMessage(result)}`);
      }
      if (result.status === 403) throw signatureRefused('result', result);
      throw new AppError('internal', 500, `upload of the result answered ${result.status}: ${errorBodyMessage(result)}`);
    },
  };
}
