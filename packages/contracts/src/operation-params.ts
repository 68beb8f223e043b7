import { z } from 'zod';
import { MAX_RESIZE_PIXELS, MAX_RESIZE_SIDE, type Operation } from './common';
import type { Dimensions } from './image-dimensions';

const SIDE_ERROR = `must be a whole number of pixels from 1 to ${MAX_RESIZE_SIDE}`;

/** A side of `resize`'s result, in pixels, in a JSON body. */
export const ResizeSideSchema = z
  .number({ error: SIDE_ERROR })
  .int({ error: SIDE_ERROR })
  .min(1, { error: SIDE_ERROR })
  .max(MAX_RESIZE_SIDE, { error: SIDE_ERROR });

/** The same in a query string or a form field, where it comes as text. */
const ResizeSideTextSchema = z.coerce
  .number({ error: SIDE_ERROR })
  .int({ error: SIDE_ERROR })
  .min(1, { error: SIDE_ERROR })
  .max(MAX_RESIZE_SIDE, { error: SIDE_ERROR });

const WIDTH_DESCRIPTION = 'With `op=resize`: the width of the result, in pixels. Alone, the height keeps the aspect ratio';
const HEIGHT_DESCRIPTION = 'With `op=resize`: the height of the result, in pixels. Alone, the width keeps the aspect ratio';

/**
 * The parameters of an upload's operation as query parameters or form fields (text). Which go
 * with which operation is checked with the operation (`operationParamsProblem`).
 */
export const OperationParamsFieldsSchema = z.object({
  width: ResizeSideTextSchema.optional().meta({ description: WIDTH_DESCRIPTION }),
  height: ResizeSideTextSchema.optional().meta({ description: HEIGHT_DESCRIPTION }),
});

/** An operation's parameters, as tasks and work carry them: `resize` takes `width`, `height` or both, the others none. */
export const OperationParamsSchema = z
  .object({
    width: ResizeSideSchema.optional().meta({ description: WIDTH_DESCRIPTION }),
    height: ResizeSideSchema.optional().meta({ description: HEIGHT_DESCRIPTION }),
  })
  .meta({ description: "The operation's parameters: `resize` takes `width`, `height` or both; the other operations none" });
export type OperationParams = z.infer<typeof OperationParamsSchema>;

export type OperationParamName = keyof OperationParams;
export const OPERATION_PARAM_NAMES = ['width', 'height'] as const satisfies readonly OperationParamName[];

/**
 * The parameters each operation takes. Adding an operation: say which here; the `Record` makes the
 * compiler refuse one that does not.
 */
export const OPERATION_PARAMS: Readonly<Record<Operation, readonly OperationParamName[]>> = {
  'swap-red-blue': [],
  grayscale: [],
  invert: [],
  sepia: [],
  flip: [],
  mirror: [],
  'rotate-90': [],
  'rotate-180': [],
  'rotate-270': [],
  blur: [],
  resize: ['width', 'height'],
};

/** The parameters that are set, without the absent ones: what a task stores and a fingerprint covers. */
export function givenParams(params: Partial<Record<OperationParamName, number | undefined>> | null | undefined): OperationParams {
  const given: OperationParams = {};
  for (const name of OPERATION_PARAM_NAMES) {
    const value = params?.[name];
    if (value !== undefined) given[name] = value;
  }
  return given;
}

const formatCount = (n: number): string => n.toLocaleString('en-US');
const and = (names: readonly string[]): string => names.join(' and ');

/**
 * Why `params` do not go with `op`, in words fit for a client; undefined when they do. Each
 * parameter's own bounds are its schema's; this checks the combination: parameters of another
 * operation, `resize` with neither side, or both sides making more than MAX_RESIZE_PIXELS.
 */
export function operationParamsProblem(op: Operation, params: OperationParams): string | undefined {
  const takes = OPERATION_PARAMS[op];
  const stray = OPERATION_PARAM_NAMES.filter((name) => params[name] !== undefined && !takes.includes(name));
  if (stray.length > 0) {
    return `${and(stray)} ${stray.length === 1 ? 'goes' : 'go'} with op=resize only, not with op=${op}`;
  }
  if (op === 'resize') {
    const { width, height } = params;
    if (width === undefined && height === undefined) return 'op=resize needs width, height or both (in pixels)';
    if (width !== undefined && height !== undefined && width * height > MAX_RESIZE_PIXELS) {
      return `resize to ${width}×${height} makes ${formatCount(width * height)} pixels, more than ${formatCount(MAX_RESIZE_PIXELS)}`;
    }
  }
  return undefined;
}

/**
 * A refinement for a schema that carries an operation and its parameters (`paramsOf` picks them
 * out): a combination that does not go (see `operationParamsProblem`) is an issue at `path`.
 */
export function refineOperationParams<T extends { op: Operation }>(paramsOf: (value: T) => OperationParams, path: string[] = []) {
  return (value: T, ctx: z.RefinementCtx<T>): void => {
    const problem = operationParamsProblem(value.op, givenParams(paramsOf(value)));
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path });
  };
}

/** `resize`'s result: the sides given, a missing one from the aspect ratio (rounded, at least 1). */
function resized({ width, height }: OperationParams, source: Dimensions): Dimensions {
  if (width !== undefined && height !== undefined) return { width, height };
  // One division of exact integer products: the rounding does not depend on the order of the factors.
  if (width !== undefined) return { width, height: Math.max(1, Math.round((source.height * width) / source.width)) };
  if (height !== undefined) return { width: Math.max(1, Math.round((source.width * height) / source.height)), height };
  // The contract lets no resize without a side through; were one to come, it would change nothing.
  return { width: source.width, height: source.height };
}

const keep = (_params: OperationParams, source: Dimensions): Dimensions => ({ width: source.width, height: source.height });
const swap = (_params: OperationParams, source: Dimensions): Dimensions => ({ width: source.height, height: source.width });

/** The size of each operation's result. Adding an operation: say it here (the `Record` insists). */
const RESULT_SIZES: Readonly<Record<Operation, (params: OperationParams, source: Dimensions) => Dimensions>> = {
  'swap-red-blue': keep,
  grayscale: keep,
  invert: keep,
  sepia: keep,
  flip: keep,
  mirror: keep,
  'rotate-90': swap,
  'rotate-180': keep,
  'rotate-270': swap,
  blur: keep,
  resize: resized,
};

/**
 * The size of the image that `op` with `params` makes of one of `source`'s size: a quarter turn
 * swaps width and height, `resize` makes the size asked for, the others keep it. Master holds a
 * result to it; the worker sizes its memory by it.
 */
export function resultDimensions(op: Operation, params: OperationParams | null | undefined, source: Dimensions): Dimensions {
  return RESULT_SIZES[op](params ?? {}, source);
}

/** What `resize` was asked for, in words: "resize to 800×600", "resize to width 800". */
function describeResize({ width, height }: OperationParams): string {
  if (width !== undefined && height !== undefined) return `resize to ${width}×${height}`;
  return width !== undefined ? `resize to width ${width}` : `resize to height ${height}`;
}

/**
 * Why the result of `op` on an image of `source`'s size would be too large, or undefined: a side
 * kept from the aspect ratio can pass MAX_RESIZE_SIDE (a width of 8000 for an image 1 pixel wide),
 * so `resize`'s result is held to MAX_RESIZE_SIDE and MAX_RESIZE_PIXELS once the source's size is
 * known. The other operations make no more pixels than their source has.
 */
export function resultSizeProblem(op: Operation, params: OperationParams | null | undefined, source: Dimensions): string | undefined {
  if (op !== 'resize') return undefined;
  const result = resultDimensions(op, params, source);
  const pixels = result.width * result.height;
  const what = () =>
    `${describeResize(params ?? {})} of an image of ${source.width}×${source.height} pixels makes ${result.width}×${result.height}`;
  if (result.width > MAX_RESIZE_SIDE || result.height > MAX_RESIZE_SIDE) {
    return `${what()}, more than ${MAX_RESIZE_SIDE} pixels a side`;
  }
  if (pixels > MAX_RESIZE_PIXELS) return `${what()}: ${formatCount(pixels)} pixels, more than ${formatCount(MAX_RESIZE_PIXELS)}`;
  return undefined;
}
