import type { ImageType, Operation, OperationParams } from '@pixelmill/contracts';
import type { ImageCodec } from './image-codec';
import { applyOperation } from './operation-registry';

/** The step about to start when `checkpoint` is called. */
export type TransformStep = 'operation' | 'encode';

/**
 * Decodes an image, applies an operation (with its `params`, for one that takes some) to its
 * pixels, and encodes it in the same type. Each step is synchronous and may take seconds on a
 * large image; `checkpoint` runs between them with the step that comes next, and may throw to
 * stop the work.
 */
export async function transformImage(
  codec: ImageCodec,
  source: Buffer,
  type: ImageType,
  op: Operation,
  checkpoint: (next: TransformStep) => Promise<void> | void = () => {},
  params?: OperationParams,
): Promise<Buffer> {
  const decoded = codec.decode(source, type);
  await checkpoint('operation');
  const transformed = applyOperation(op, decoded, params);
  await checkpoint('encode');
  return codec.encode(transformed, type);
}
