import type { ImageType, Operation } from '@pixelmill/contracts';
import type { ImageCodec } from './image-codec';
import { applyOperation } from './operations';

/**
 * Decodes an image, applies an operation to its pixels, and encodes it in the same type.
 * Each step is synchronous and may take seconds on a large image; `checkpoint` runs between
 * them, may let the event loop turn (heartbeats, deadlines) and throws to stop the work.
 */
export async function transformImage(
  codec: ImageCodec,
  source: Buffer,
  type: ImageType,
  op: Operation,
  checkpoint: () => Promise<void> = async () => {},
): Promise<Buffer> {
  const bitmap = codec.decode(source, type);
  await checkpoint();
  applyOperation(op, bitmap);
  await checkpoint();
  return codec.encode(bitmap, type);
}
