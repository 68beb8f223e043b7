import {
  DEFAULT_OPERATION,
  detectImageType,
  givenParams,
  IMAGE_TYPES,
  inspectImage,
  OPERATION_PARAM_NAMES,
  OPERATION_PARAMS,
  OPERATIONS,
  OperationParamsFieldsSchema,
  operationParamsProblem,
  OperationSchema,
  readDeclaredDimensions,
  resultSizeProblem,
  type Dimensions,
  type ImageInspection,
  type ImageType,
  type Operation,
  type OperationParams,
} from '@pixelmill/contracts';
import type { Readable } from 'node:stream';
import { AppError, IMAGE_HEAD_BYTES, IMAGE_TYPE_BYTES, peekStream } from '@pixelmill/kit';

/** What an upload asks to be done: the operation and its parameters (resize: width, height; none for the others). */
export interface OperationRequest {
  op: Operation;
  params: OperationParams;
}

/**
 * An upload that passed every check, ready to hand to master: the bytes, or the stream they
 * still arrive on (checked by their head), with its length when declared.
 */
export type CheckedUpload = { contentType: ImageType } & OperationRequest &
  ({ bytes: Buffer } | { stream: Readable; length: number | undefined });

/** How large an image may be, by its header and by each of its frames; checked before anything decodes it. */
export interface ImageLimits {
  /** Width times height: of the image, of each frame, and of all its frames together. */
  maxPixels: number;
  /** Width and height, each, of the image and of each frame. */
  maxSide: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxPixels: 50_000_000, maxSide: 16_384 };

/** The accepted formats as people name them: PNG, JPEG, … */
export const IMAGE_TYPE_NAMES = IMAGE_TYPES.map((type) => type.replace('image/', '').toUpperCase());
const KNOWN_TYPES = `${IMAGE_TYPE_NAMES.slice(0, -1).join(', ')} or ${IMAGE_TYPE_NAMES.at(-1)}`;

/** Checks an operation name that did not come through a contract schema (a form field). */
export function parseOperation(value: unknown): Operation {
  const result = OperationSchema.safeParse(value);
  if (!result.success) {
    throw new AppError('bad_request', 400, `unknown op "${String(value)}"; allowed: ${OPERATIONS.join(', ')}`);
  }
  return result.data;
}

/** The fields of an upload that say what to do with it, as they came: form fields are text, query parameters parsed. */
export interface OperationFields {
  op?: unknown;
  width?: unknown;
  height?: unknown;
}

/** A form field as given: an empty one (a browser sends every input, filled or not) counts as absent. */
const given = (value: unknown): unknown => (value === '' ? undefined : value);

/**
 * The operation and parameters an upload asks for, each field from the form when it has it, else
 * from the query: `op` (the default operation when neither has it), `width`, `height`. Checked
 * as master's query is (the contract's bounds and which parameters go with which op): a 400 that
 * says what is wrong.
 */
export function parseOperationRequest(form: OperationFields, query: OperationFields = {}): OperationRequest {
  const pick = (name: keyof OperationFields): unknown => given(form[name]) ?? query[name];
  const rawOp = pick('op');
  const op = rawOp === undefined ? DEFAULT_OPERATION : parseOperation(rawOp);
  const params: Partial<Record<keyof OperationParams, number>> = {};
  for (const name of OPERATION_PARAM_NAMES) {
    const value = pick(name);
    if (value === undefined) continue;
    const side = OperationParamsFieldsSchema.shape[name].safeParse(value);
    if (!side.success) {
      // A field is text; a query parameter given twice comes as a list.
      const shown = typeof value === 'string' || typeof value === 'number' ? value : JSON.stringify(value);
      throw new AppError('bad_request', 400, `${name} "${shown}": ${side.error.issues[0]!.message}`);
    }
    params[name] = side.data;
  }
  const request = { op, params: givenParams(params) };
  const problem = operationParamsProblem(request.op, request.params);
  if (problem !== undefined) throw new AppError('bad_request', 400, problem);
  return request;
}

/**
 * Whether the fields that came so far say all an upload asks for, so that its image can go on as
 * it arrives: its op, and for an op that takes parameters at least one of them (more may follow
 * only at the price of a 400, see `sameRequest`). False while the op, or every parameter of one
 * that takes them, may still come.
 */
export function requestKnown(form: OperationFields, query: OperationFields = {}): boolean {
  if (given(form.op) === undefined) return false;
  const takes = OPERATION_PARAMS[parseOperation(form.op)];
  return takes.length === 0 || takes.some((name) => (given(form[name]) ?? query[name]) !== undefined);
}

/** Whether two requests ask for the same: the same op and parameters. */
export const sameRequest = (a: OperationRequest, b: OperationRequest): boolean =>
  a.op === b.op && OPERATION_PARAM_NAMES.every((name) => a.params[name] === b.params[name]);

const formatCount = (n: number): string => n.toLocaleString('en-US');
const formatSize = ({ width, height }: Dimensions): string => `${formatCount(width)}×${formatCount(height)}`;

/** Refuses a size over the limits; `subject` says whose size it is ("the image declares"). */
function checkSize(subject: () => string, size: Dimensions, { maxPixels, maxSide }: ImageLimits, details: object = {}): void {
  // The messages are built only when a limit is broken: toLocaleString is slow, and most uploads pass.
  const { width, height } = size;
  const what = (): string => `${subject()} ${formatSize(size)} pixels`;
  const allDetails = { ...details, width, height, maxPixels, maxSide };
  // The pixel count first: it is what a decompression bomb is about.
  if (width * height > maxPixels) {
    throw new AppError(
      'payload_too_large',
      413,
      `${what()} (${formatCount(width * height)} in all); the limit is ${formatCount(maxPixels)} pixels`,
      allDetails,
    );
  }
  if (width > maxSide || height > maxSide) {
    throw new AppError('payload_too_large', 413, `${what()}; the limit is ${formatCount(maxSide)} pixels a side`, allDetails);
  }
}

/**
 * Refuses an image whose header declares more pixels than the limits, a decompression bomb
 * say: a few hundred bytes of PNG can declare 100000×100000 pixels. Only the header is read.
 */
export function checkDeclaredSize(declared: Dimensions, limits: ImageLimits): void {
  checkSize(() => 'the image declares', declared, limits);
}

/**
 * Refuses an image whose frames break the limits though its header does not: a 35-byte GIF can
 * hold a 65535×65535 frame in a 1×1 screen, a JPEG a second frame header after its first. Each
 * frame is held to the limits, and all frames together to the same pixel limit, as the worker
 * holds them before decoding (its decode plan): what it would fail later is refused here at once.
 */
export function checkFrames(inspection: ImageInspection, limits: ImageLimits): void {
  const { frames, frameCount, totalPixels } = inspection;
  const breaks = ({ width, height }: Dimensions): boolean =>
    width * height > limits.maxPixels || width > limits.maxSide || height > limits.maxSide;
  const listed = frames.findIndex(breaks);
  // Past the listed frames, the largest, the widest and the tallest of all stand for the others.
  const { largestFrame, widestFrame, tallestFrame } = inspection;
  const frame = listed >= 0 ? frames[listed] : [largestFrame, widestFrame, tallestFrame].find(breaks);
  if (frame) {
    const which = (): string =>
      listed >= 0
        ? `its frame ${formatCount(listed + 1)} of ${formatCount(frameCount)}`
        : `a frame after its first ${formatCount(frames.length)} (of ${formatCount(frameCount)})`;
    const subject = () => `the image declares ${formatSize(inspection)} pixels but ${which()} is`;
    checkSize(subject, frame, limits, { ...(listed >= 0 ? { frame: listed + 1 } : {}), frames: frameCount });
  }
  if (totalPixels > limits.maxPixels) {
    throw new AppError(
      'payload_too_large',
      413,
      `the image has ${formatCount(frameCount)} frames of ${formatCount(totalPixels)} pixels in all; ` +
        `the limit is ${formatCount(limits.maxPixels)} pixels for all frames together`,
      { frames: frameCount, totalPixels, maxPixels: limits.maxPixels },
    );
  }
}

/**
 * The real type of an upload decides, from its first bytes: the file name and the declared
 * Content-Type are the client's word and are never trusted. The size its header declares, each
 * frame's and all frames' together must be within the limits, read from the bytes without
 * decoding (a walk over 25 MB of JPEG takes a few milliseconds); a header that cannot be read
 * passes, and the worker reports the damage.
 */
export function checkUpload(
  bytes: Buffer | undefined,
  { op, params }: OperationRequest,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): CheckedUpload {
  if (!bytes || bytes.length === 0) {
    throw new AppError(
      'bad_request',
      400,
      'no image: send it as the multipart form field "image", or as a raw image body (e.g. Content-Type: image/png)',
    );
  }
  const contentType = detectImageType(bytes.subarray(0, IMAGE_TYPE_BYTES));
  if (!contentType) {
    throw new AppError(
      'unsupported_media_type',
      415,
      `the upload is not a ${KNOWN_TYPES} image (judged by its content, not its name or declared type)`,
    );
  }
  const declared = readDeclaredDimensions(contentType, bytes);
  if (declared) checkDeclaredSize(declared, limits);
  const inspection = inspectImage(contentType, bytes);
  if (inspection) checkFrames(inspection, limits);
  // A side kept from the aspect ratio may pass resize's bounds: known once the size is.
  const tooLarge = declared && declared.width > 0 && declared.height > 0 ? resultSizeProblem(op, params, declared) : undefined;
  if (tooLarge !== undefined) throw new AppError('bad_request', 400, tooLarge);
  return { bytes, contentType, op, params };
}

/**
 * Checks an upload that is still arriving, by its first bytes, as `checkUpload` does; the stream
 * is passed on whole, never held in memory. `length` is its declared length, if any.
 *
 * Only the head is here: the header's size and the frames that start within the head are checked,
 * not the frames after it (a GIF's 500th, a JPEG's frame header after megabytes of scan). Those
 * are the worker's to refuse: it checks every frame of the whole file before decoding, and the
 * task ends `failed`.
 */
export async function checkUploadStream(
  stream: Readable,
  length: number | undefined,
  request: OperationRequest,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<CheckedUpload> {
  // Read ahead for the checks: the type is in the first bytes, the declared size in the header.
  const head = await peekStream(stream, Math.min(length ?? IMAGE_HEAD_BYTES, IMAGE_HEAD_BYTES));
  const { contentType } = checkUpload(head, request, limits);
  return { stream, length, contentType, ...request };
}
