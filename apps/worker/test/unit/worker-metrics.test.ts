import { ImageDecodeError, PermanentWorkError } from '../../src/domain/work-errors';
import { failureClass } from '../../src/status/worker-metrics';
import { ThreadCrashedError, ThreadOutOfMemoryError, TransformTimeoutError } from '../../src/threads/transform-pool';
import { fromThreadError } from '../../src/threads/transform-protocol';

describe('failure classes of the worker metrics', () => {
  it.each([
    ['an image that does not decode', new ImageDecodeError('could not decode image/png: truncated'), 'image'],
    [
      'a limit broken, as it comes back from a transform thread',
      fromThreadError({ kind: 'decode', message: 'image/gif frame of 65535x65535 pixels is larger than the limit' }),
      'image',
    ],
    ['TRANSFORM_TIMEOUT_MS', new TransformTimeoutError(60_000), 'timeout'],
    ["a thread's heap limit", new ThreadOutOfMemoryError(512), 'memory'],
    ['a source missing from storage', new PermanentWorkError('the source image is missing from storage'), 'other'],
    ['anything else', new ThreadCrashedError('the image thread died'), 'other'],
  ])('when a task fails of %s, then its class is the one named', (_what, err, expected) => {
    expect(failureClass(err)).toBe(expected);
  });
});
