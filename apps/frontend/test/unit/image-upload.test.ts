import { Readable } from 'node:stream';
import jpeg from '@jimp/js-jpeg';
import { gifWithFrames, gifWithFrameSizes, gifWithHugeFrame, jpegWithSecondFrame, rgbaPng } from '@pixelmill/contracts/testing';
import { AppError } from '@pixelmill/kit';
import { checkUpload, checkUploadStream, DEFAULT_IMAGE_LIMITS } from '../../src/domain/image-upload';

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

    expect(refusal(() => checkUpload(gif, 'invert'))).toBe(
      'the image declares 1×1 pixels but its frame 1 of 1 is 65,535×65,535 pixels (4,294,836,225 in all); ' +
        'the limit is 50,000,000 pixels',
    );
  });

  it('when a JPEG has a second frame header of 60000×60000 after a small first frame, then it is refused naming that frame', () => {
    const crafted = Buffer.from(jpegWithSecondFrame(smallJpeg(), 60_000, 60_000));

    expect(refusal(() => checkUpload(crafted, 'invert'))).toBe(
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

    expect(refusal(() => checkUpload(gif, 'invert'))).toBe(
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

    expect(refusal(() => checkUpload(gif, 'invert'))).toBe(
      'the image declares 10×10 pixels but a frame after its first 1,000 (of 1,002) is 30,000×1 pixels; ' +
        'the limit is 16,384 pixels a side',
    );
  });

  it('when the frames of a GIF are each within the limits but not together, then it is refused for their total', () => {
    expect(refusal(() => checkUpload(Buffer.from(gifWithFrames(3, 5_000, 5_000)), 'invert'))).toBe(
      'the image has 3 frames of 75,000,000 pixels in all; the limit is 50,000,000 pixels for all frames together',
    );
  });

  it('when a PNG is within the limits, then it is accepted as a PNG', () => {
    const png = Buffer.from(rgbaPng(64, 48, 8));

    expect(checkUpload(png, 'invert')).toEqual({ bytes: png, contentType: 'image/png', op: 'invert' });
  });

  it('when a small animated GIF is within the limits, frame by frame and in all, then it is accepted', () => {
    const gif = Buffer.from(gifWithFrames(40, 320, 240));

    expect(checkUpload(gif, 'grayscale')).toEqual({ bytes: gif, contentType: 'image/gif', op: 'grayscale' });
    // At the limit exactly: 2 frames of 5000×5000 are the 50,000,000 pixels allowed.
    expect(checkUpload(Buffer.from(gifWithFrames(2, 5_000, 5_000)), 'invert').contentType).toBe('image/gif');
  });

  it('when the limits are configured, then the frames are held to them', () => {
    const limits = { maxPixels: 10_000, maxSide: 200 };
    const gif = Buffer.from(
      gifWithFrameSizes({ width: 50, height: 50 }, [
        { width: 50, height: 50 },
        { width: 150, height: 150 },
      ]),
    );

    expect(refusal(() => checkUpload(gif, 'invert', limits))).toMatch(
      /^the image declares 50×50 pixels but its frame 2 of 2 is 150×150 pixels/,
    );
    expect(checkUpload(gif, 'invert', DEFAULT_IMAGE_LIMITS).contentType).toBe('image/gif');
  });
});

describe('checkUploadStream', () => {
  it('when a streamed GIF holds a huge frame within its head, then it is refused with 413 before the rest is read', async () => {
    const gif = Buffer.concat([gifWithHugeFrame(), Buffer.alloc(300 * 1024)]);
    const stream = Readable.from([gif.subarray(0, 64 * 1024), gif.subarray(64 * 1024)]);

    await expect(checkUploadStream(stream, gif.length, 'invert')).rejects.toMatchObject({
      status: 413,
      message: expect.stringMatching(/^the image declares 1×1 pixels but its frame 1 of 1 is 65,535×65,535 pixels/),
    });
  });
});
