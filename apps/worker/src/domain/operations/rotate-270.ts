import { clockwiseRotation } from './rotation';

/** Three quarter turns clockwise (a quarter turn anticlockwise): width and height trade places. */
export const rotate270 = clockwiseRotation(270);
