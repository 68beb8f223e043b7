import { storageContract, type ImageType, type TaskId } from '@pixelmill/contracts';
import { AppError, type ContractClient } from '@pixelmill/kit';
import { refusalMessage } from './refusal-message';
import { PermanentWorkError } from '../domain/work-errors';

/** What the loop needs from storage. Anything not listed as a result is thrown and is transient. */
export interface StorageApi {
  /** The image to work on. Throws PermanentWorkError when storage has no such image. */
  downloadSource(id: TaskId): Promise<Buffer>;
  /** Stores the result. Throws PermanentWorkError when storage refuses these bytes. */
  uploadResult(id: TaskId, bytes: Buffer, contentType: ImageType): Promise<void>;
}

export function createStorageApi(client: ContractClient): StorageApi {
  return {
    async downloadSource(id) {
      const result = await client.call(storageContract.get, { params: { state: 'inProgress', key: id } });
      if (result.status === 200) return result.body;
      // master stores the image before it creates the task, so a missing image will stay missing.
      if (result.status === 404) throw new PermanentWorkError('the source image is missing from storage');
      throw new AppError('internal', 500, `get inProgress/${id} answered ${result.status}: ${refusalMessage(result)}`);
    },

    async uploadResult(id, bytes, contentType) {
      const result = await client.call(storageContract.put, {
        params: { state: 'finished', key: id },
        body: bytes,
        contentType,
      });
      if (result.status === 201) return;
      // Too large, or a type storage does not accept: the same bytes would be refused again.
      if (result.status === 413 || result.status === 415) {
        throw new PermanentWorkError(`storage refused the result: ${refusalMessage(result)}`);
      }
      throw new AppError('internal', 500, `put finished/${id} answered ${result.status}: ${refusalMessage(result)}`);
    },
  };
}
