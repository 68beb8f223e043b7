import type { ImageType, Operation, OperationParams } from '@pixelmill/contracts';
import type { ImageCodec } from './image-codec';
import { applyOperation } from './operation-registry';

/** The step about to start when `checkpoint` is called. */
export type TransformStep = 'operation' | 'encode';

/**
 * Decodes an image, applies an operation (with its `params`, for one that takes some) to its
 * pixels (to every frame of an animated GIF, each a whole picture, so every frame turns alike),
 * and encodes it in the same type. Each step is synchronous and may take seconds on a large
 * image; `checkpoint` runs between them with the step that comes next, and may throw to stop the
 * work.
 */
export async function transformImage(
  codec: ImageCodec,
  source: Buffer,
  type: ImageType,
  op: Operation,
  checkpoint: (next: TransformStep) => Promise<void> | void = () => {},
  params?: OperationParams,
): Promise<Buffer> {
  const image = codec.decodeImage(source, type);
  await checkpoint('operation');
  // Frame by frame, each replaced as it is done: a frame's source is let go before the next.
  image.frames.forEach((frame, i) => (image.frames[i] = applyOperation(op, frame, params)));
  await checkpoint('encode');
  return codec.encodeImage(image, type);
}
