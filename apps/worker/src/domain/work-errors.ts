/**
 * The task can never be done, however often it is tried (an image that does not decode, breaks a
 * limit, or has no codec): the worker reports it to master as failed, with this message as reason.
 */
export class PermanentWorkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentWorkError';
  }
}

/** The source bytes are not an image of the declared type, or break a limit. */
export class ImageDecodeError extends PermanentWorkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

/**
 * Master no longer counts this worker as the holder of the task: the lease expired and the task
 * went to someone else, or it ended. The work in hand is dropped without reporting anything.
 */
export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/**
 * The worker gives the task back by its own decision (the attempt took too long, the worker is
 * shutting down): master is told at once (workReleased) and the task is retried later, within
 * the attempt limit. No service failed, so the loop does not back off.
 */
export class WorkGivenBackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkGivenBackError';
  }
}
