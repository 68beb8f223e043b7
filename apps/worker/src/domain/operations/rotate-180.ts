import { clockwiseRotation } from './rotation';

/** A half turn. */
export const rotate180 = clockwiseRotation(180);
