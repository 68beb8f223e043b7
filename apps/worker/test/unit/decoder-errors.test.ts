import { describeDecoderError } from '../../src/domain/decoder-errors';

describe('describeDecoderError', () => {
  it.each([
    [
      'pngjs on a truncated file',
      new Error('There are some read requests waitng on finished stream'),
      'the file is truncated or corrupt (it ends too early)',
    ],
    ['zlib on a truncated stream', new Error('unexpected end of file'), 'the file is truncated or corrupt (it ends too early)'],
    ['pngjs on a bad checksum', new Error('Crc error - 1234 - 5678'), 'the file is truncated or corrupt (a checksum does not match)'],
    [
      'zlib on damaged data',
      new Error('invalid distance too far back'),
      'the file is truncated or corrupt (its compressed data is damaged)',
    ],
    [
      'bmp-ts reading past the end',
      new RangeError('The value of "offset" is out of range. It must be >= 0 and <= 26. Received 30'),
      'the file is truncated or corrupt (it ends too early)',
    ],
    ['jpeg-js on a truncated file', new Error('marker was not found'), 'the file is truncated or corrupt (it ends too early)'],
    [
      'omggif before its first frame',
      new Error('Frame index out of range.'),
      'the file is truncated or corrupt (it ends before its first frame)',
    ],
    [
      'jpeg-js on an unsupported file',
      new Error('Unsupported color mode (4 components)'),
      'the file uses a variant of the format that is not supported (Unsupported color mode (4 components))',
    ],
    [
      'jpeg-js past its memory limit',
      new Error('maxMemoryUsageInMB limit exceeded by at least 12MB'),
      'the image needs more memory to decode than allowed (maxMemoryUsageInMB limit exceeded by at least 12MB)',
    ],
    ['V8 refusing a buffer', new RangeError('Array buffer allocation failed'), 'the image needs more memory to decode than allowed'],
    [
      'a decoder tripping over bytes',
      new TypeError("Cannot set properties of undefined (setting 'huffmanTableDC')"),
      'the file is truncated or corrupt',
    ],
    ['an unknown complaint', new Error('unknown JPEG marker 5555'), 'the file is truncated or corrupt (unknown JPEG marker 5555)'],
  ])('%s', (_name, err, reason) => {
    expect(describeDecoderError(err)).toBe(reason);
  });
});
