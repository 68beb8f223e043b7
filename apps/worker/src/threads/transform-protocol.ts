import type { ImageType, Operation, OperationParams } from '@pixelmill/contracts';
import type { ImageCodecOptions } from '../domain/image-codec';
import { ImageDecodeError, PermanentWorkError } from '../domain/work-errors';

// The messages between the transform pool (main thread) and its threads. Image bytes cross as
// transferred ArrayBuffers: moved, not copied, and unusable on the side that sent them.

/** `workerData` of every thread. */
export interface ThreadData {
  codec: ImageCodecOptions;
}

/** Pool → thread: one task's CPU work. The thread answers each with one `done` or `failed`. */
export interface TransformRequest {
  id: number;
  source: Uint8Array;
  contentType: ImageType;
  op: Operation;
  /** The operation's parameters (resize: width, height), structured-cloned; absent for those without any. */
  params?: OperationParams;
}

/** Where the time of one transform went, in the thread that did it. */
export interface TransformTimings {
  threadId: number;
  decodeMs: number;
  operationMs: number;
  encodeMs: number;
}

/** An error crosses as its kind and message: the kind decides what the loop does with the task. */
export interface ThreadError {
  kind: 'decode' | 'permanent' | 'unexpected';
  message: string;
}

/** Thread → pool. `encoding` comes before `done` when the last step starts. */
export type ThreadMessage =
  | { id: number; type: 'encoding' }
  | { id: number; type: 'done'; bytes: Uint8Array; timings: TransformTimings }
  | { id: number; type: 'failed'; error: ThreadError };

export function toThreadError(err: unknown): ThreadError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ImageDecodeError) return { kind: 'decode', message };
  if (err instanceof PermanentWorkError) return { kind: 'permanent', message };
  return { kind: 'unexpected', message: err instanceof Error ? `${err.name}: ${message}` : message };
}

/** The error the task would have met on the main thread: same class, same message (the reason). */
export function fromThreadError(error: ThreadError): Error {
  if (error.kind === 'decode') return new ImageDecodeError(error.message);
  if (error.kind === 'permanent') return new PermanentWorkError(error.message);
  return new Error(`the image thread failed: ${error.message}`);
}

/**
 * `bytes` ready to be transferred: its own ArrayBuffer when it spans all of it, else a copy
 * (a small Buffer may be a slice of Node's shared pool, which must not be moved away).
 */
export function transferable(bytes: Uint8Array): { view: Uint8Array; transfer: ArrayBuffer[] } {
  const { buffer } = bytes;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) {
    return { view: bytes, transfer: [buffer] };
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { view: copy, transfer: [copy.buffer] };
}

/** A Buffer over received bytes, without copying them. */
export const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
