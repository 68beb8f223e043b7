import { clockwiseRotation } from './rotation';

/** A quarter turn clockwise: width and height trade places. */
export const rotate90 = clockwiseRotation(90);
