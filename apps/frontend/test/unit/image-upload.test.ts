import { Readable } from 'node:stream';
import jpeg from '@jimp/js-jpeg';
import { gifWithFrames, gifWithFrameSizes, gifWithHugeFrame, jpegWithSecondFrame, rgbaPng } from '@pixelmill/contracts/testing';
import { AppError } from '@pixelmill/kit';
import {
  checkUpload,
  checkUploadStream,
  DEFAULT_IMAGE_LIMITS,
  parseOperationRequest,
  requestKnown,
  sameRequest,
} from '../../src/domain/image-upload';

const bitmap = (width: number, height: number) => ({ data: Buffer.alloc(width * height * 4, 0x80), width, height });
const smallJpeg = (): Buffer => Buffer.from(jpeg().encode(bitmap(8, 8), { quality: 80 }));

/** The AppError `act` throws: a 413 with the contract's code. Its message. */
function refusal(act: () => unknown): string {
  try {
    act();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 413, code: 'payload_too_large' });
    return (err as AppError).message;
  }
  throw new Error('it was not refused');
}

describe('checkUpload', () => {
  it('when a 35-byte GIF holds a 65535×65535 frame in a 1×1 screen, then it is refused with 413 naming the frame', () => {
    const gif = Buffer.from(gifWithHugeFrame());
    expect(gif.length).toBe(35);

    expect(refusal(() => checkUpload(gif, { op: 'invert', params: {} }))).toBe(
      'the image declares 1×1 pixels but its frame 1 of 1 is 65,535×65,535 pixels (4,294,836,225 in all); ' +
        'the limit is 50,000,000 pixels',
    );
  });

  it('when a JPEG has a second frame header of 60000×60000 after a small first frame, then it is refused naming that frame', () => {
    const crafted = Buffer.from(jpegWithSecondFrame(smallJpeg(), 60_000, 60_000));

    expect(refusal(() => checkUpload(crafted, { op: 'invert', params: {} }))).toBe(
      'the image declares 8×8 pixels but its frame 2 of 2 is 60,000×60,000 pixels (3,600,000,000 in all); ' +
        'the limit is 50,000,000 pixels',
    );
  });

  it('when a frame is longer than the side limit though within the pixel limit, then it is refused naming the side limit', () => {
    const gif = Buffer.from(
      gifWithFrameSizes({ width: 100, height: 100 }, [
        { width: 100, height: 100 },
        { width: 100, height: 100 },
        { width: 1, height: 20_000 },
      ]),
    );

    expect(refusal(() => checkUpload(gif, { op: 'invert', params: {} }))).toBe(
      'the image declares 100×100 pixels but its frame 3 of 3 is 1×20,000 pixels; the limit is 16,384 pixels a side',
    );
  });

  it('when the frame over a limit comes after the first 1000 and is not the largest, then it is refused too', () => {
    const small = Array.from({ length: 1_000 }, () => ({ width: 10, height: 10 }));
    const after = [
      { width: 30_000, height: 1 },
      { width: 200, height: 200 },
    ];
    const gif = Buffer.from(gifWithFrameSizes({ width: 10, height: 10 }, [...small, ...after]));

    expect(refusal(() => checkUpload(gif, { op: 'invert', params: {} }))).toBe(
      'the image declares 10×10 pixels but a frame after its first 1,000 (of 1,002) is 30,000×1 pixels; ' +
        'the limit is 16,384 pixels a side',
    );
  });

  it('when the frames of a GIF are each within the limits but not together, then it is refused for their total', () => {
    expect(refusal(() => checkUpload(Buffer.from(gifWithFrames(3, 5_000, 5_000)), { op: 'invert', params: {} }))).toBe(
      'the image has 3 frames of 75,000,000 pixels in all; the limit is 50,000,000 pixels for all frames together',
    );
  });

  it('when a PNG is within the limits, then it is accepted as a PNG', () => {
    const png = Buffer.from(rgbaPng(64, 48, 8));

    expect(checkUpload(png, { op: 'invert', params: {} })).toEqual({ bytes: png, contentType: 'image/png', op: 'invert', params: {} });
  });

  it('when a small animated GIF is within the limits, frame by frame and in all, then it is accepted', () => {
    const gif = Buffer.from(gifWithFrames(40, 320, 240));

    expect(checkUpload(gif, { op: 'grayscale', params: {} })).toEqual({
      bytes: gif,
      contentType: 'image/gif',
      op: 'grayscale',
      params: {},
    });
    // At the limit exactly: 2 frames of 5000×5000 are the 50,000,000 pixels allowed.
    expect(checkUpload(Buffer.from(gifWithFrames(2, 5_000, 5_000)), { op: 'invert', params: {} }).contentType).toBe('image/gif');
  });

  it('when the limits are configured, then the frames are held to them', () => {
    const limits = { maxPixels: 10_000, maxSide: 200 };
    const gif = Buffer.from(
      gifWithFrameSizes({ width: 50, height: 50 }, [
        { width: 50, height: 50 },
        { width: 150, height: 150 },
      ]),
    );

    expect(refusal(() => checkUpload(gif, { op: 'invert', params: {} }, limits))).toMatch(
      /^the image declares 50×50 pixels but its frame 2 of 2 is 150×150 pixels/,
    );
    expect(checkUpload(gif, { op: 'invert', params: {} }, DEFAULT_IMAGE_LIMITS).contentType).toBe('image/gif');
  });
});

describe('checkUploadStream', () => {
  it('when a streamed GIF holds a huge frame within its head, then it is refused with 413 before the rest is read', async () => {
    const gif = Buffer.concat([gifWithHugeFrame(), Buffer.alloc(300 * 1024)]);
    const stream = Readable.from([gif.subarray(0, 64 * 1024), gif.subarray(64 * 1024)]);

    await expect(checkUploadStream(stream, gif.length, { op: 'invert', params: {} })).rejects.toMatchObject({
      status: 413,
      message: expect.stringMatching(/^the image declares 1×1 pixels but its frame 1 of 1 is 65,535×65,535 pixels/),
    });
  });
});

/** The message of the 400 `act` throws. */
function badRequest(act: () => unknown): string {
  try {
    act();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 400, code: 'bad_request' });
    return (err as AppError).message;
  }
  throw new Error('it was not refused');
}

describe('parseOperationRequest', () => {
  it('when the form has op, width and height, then they are the request, each form field over the query parameter', () => {
    expect(parseOperationRequest({ op: 'resize', width: '800', height: '600' })).toEqual({
      op: 'resize',
      params: { width: 800, height: 600 },
    });
    expect(parseOperationRequest({ width: '10' }, { op: 'resize', width: 5, height: 7 })).toEqual({
      op: 'resize',
      params: { width: 10, height: 7 },
    });
    expect(parseOperationRequest({}, {})).toEqual({ op: 'swap-red-blue', params: {} });
  });

  it('when a field is empty (a browser sends every input), then it counts as absent', () => {
    expect(parseOperationRequest({ op: 'invert', width: '', height: '' })).toEqual({ op: 'invert', params: {} });
    expect(parseOperationRequest({ op: 'resize', width: '', height: '30' })).toEqual({ op: 'resize', params: { height: 30 } });
  });

  it.each([
    [{ op: 'resize' }, 'op=resize needs width, height or both (in pixels)'],
    [{ op: 'resize', width: '0' }, 'width "0": must be a whole number of pixels from 1 to 8192'],
    [{ op: 'resize', height: '-3' }, 'height "-3": must be a whole number of pixels from 1 to 8192'],
    [{ op: 'resize', width: '9000' }, 'width "9000": must be a whole number of pixels from 1 to 8192'],
    [{ op: 'resize', width: '1.5' }, 'width "1.5": must be a whole number of pixels from 1 to 8192'],
    [{ op: 'resize', width: 'big' }, 'width "big": must be a whole number of pixels from 1 to 8192'],
    [{ op: 'grayscale', width: '10' }, 'width goes with op=resize only, not with op=grayscale'],
    [{ width: '10', height: '10' }, 'width and height go with op=resize only, not with op=swap-red-blue'],
    [{ op: 'stretch' }, /^unknown op "stretch"; allowed: .*resize/],
  ])('when the fields are %o, then it is a 400: %s', (fields, message) => {
    expect(badRequest(() => parseOperationRequest(fields))).toMatch(message);
  });
});

describe('requestKnown', () => {
  it('when the op came and takes no parameters, or a parameter of resize came, then the request is known', () => {
    expect(requestKnown({ op: 'invert' })).toBe(true);
    expect(requestKnown({ op: 'resize', width: '10' })).toBe(true);
    expect(requestKnown({ op: 'resize' }, { height: '10' })).toBe(true);
  });

  it('when the op, or every parameter of resize, may still come, then it is not', () => {
    expect(requestKnown({})).toBe(false);
    expect(requestKnown({}, { op: 'invert' })).toBe(false);
    expect(requestKnown({ op: 'resize' })).toBe(false);
    expect(requestKnown({ op: 'resize', width: '' })).toBe(false);
  });

  it('tells requests apart by op and parameters', () => {
    expect(sameRequest({ op: 'resize', params: { width: 1 } }, { op: 'resize', params: { width: 1 } })).toBe(true);
    expect(sameRequest({ op: 'resize', params: { width: 1 } }, { op: 'resize', params: { width: 1, height: 2 } })).toBe(false);
    expect(sameRequest({ op: 'invert', params: {} }, { op: 'grayscale', params: {} })).toBe(false);
  });
});

describe('checkUpload of a resize', () => {
  it('when a side kept from the aspect ratio would pass the bound, then it is a 400 before anything goes on', () => {
    const tall = Buffer.from(rgbaPng(10, 1000, 8));
    expect(badRequest(() => checkUpload(tall, { op: 'resize', params: { width: 100 } }))).toBe(
      'resize to width 100 of an image of 10×1000 pixels makes 100×10000, more than 8192 pixels a side',
    );
    expect(checkUpload(tall, { op: 'resize', params: { width: 5 } })).toMatchObject({ op: 'resize', params: { width: 5 } });
  });
});
