import { AppError } from '@pixelmill/kit';

/** Also the answer for another owner's image: to a stranger, someone else's image does not exist. */
export const unknownImage = (id: string): AppError => new AppError('not_found', 404, `no image with id ${id}`);

export const imageExpired = (id: string): AppError =>
  new AppError('gone', 410, `image ${id} has expired: its files were deleted after the retention time`);
