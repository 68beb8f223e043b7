import type { ImageType, Operation } from '@pixelmill/contracts';
import type { ImageCodec } from './image-codec';
import { applyOperation } from './operations';

/** Decodes an image, applies an operation to its pixels, and encodes it in the same type. */
export async function transformImage(
  codec: ImageCodec,
  source: Buffer,
  type: ImageType,
  op: Operation,
): Promise<Buffer> {
  const bitmap = codec.decode(source, type);
  applyOperation(op, bitmap);
  return codec.encode(bitmap, type);
}
