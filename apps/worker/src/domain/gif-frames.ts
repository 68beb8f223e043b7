import { BitmapImage, GifCodec, GifFrame, GifUtil, type GifSpec } from 'gifwrap';
import { GifReader } from 'omggif';
import type { DecodedImage, RgbaBitmap } from './bitmap';

// GIF through omggif (the reader of jimp's GIF plugin and of gifwrap) and gifwrap (jimp's GIF
// library) for writing. gifwrap's own decoder hands back each frame's rectangle apart, each in a
// buffer of the whole screen; here every frame is drawn onto the screen instead, as a viewer
// shows it (each frame over what the previous ones left, per their disposal), so each frame is a
// whole picture of the screen's size. An operation that moves pixels (a turn, a flip) then moves
// them in the picture's coordinates, and every frame turns alike.

const DISPOSE_TO_BACKGROUND = 2;
const DISPOSE_TO_PREVIOUS = 3;

/** Clears a frame's rectangle, clipped to the screen, to transparent: "restore to background". */
function clearRectangle(
  screen: Buffer,
  screenWidth: number,
  screenHeight: number,
  frame: { x: number; y: number; width: number; height: number },
) {
  const right = Math.min(screenWidth, frame.x + frame.width);
  const bottom = Math.min(screenHeight, frame.y + frame.height);
  if (frame.x >= right) return;
  for (let y = frame.y; y < bottom; y++) screen.fill(0, (y * screenWidth + frame.x) * 4, (y * screenWidth + right) * 4);
}

/**
 * Every frame of a GIF, drawn on its screen (transparent at first): the frame's opaque pixels over
 * what is there, then its disposal (2 clears its rectangle, 3 restores what was there before it).
 * Pixels are opaque (alpha 255) or transparent (0, 0, 0, 0). One frame: a still image.
 */
export function decodeGif(bytes: Buffer): DecodedImage {
  const reader = new GifReader(bytes);
  const { width, height } = reader;
  const count = reader.numFrames();
  const screen = Buffer.alloc(width * height * 4);
  const frames: RgbaBitmap[] = [];
  const delays: number[] = [];
  for (let i = 0; i < Math.max(1, count); i++) {
    const info = reader.frameInfo(i); // throws for a GIF without a frame
    const last = i >= count - 1;
    const before = info.disposal === DISPOSE_TO_PREVIOUS && !last ? Buffer.from(screen) : undefined;
    reader.decodeAndBlitFrameRGBA(i, screen);
    frames.push({ data: last ? screen : Buffer.from(screen), width, height });
    delays.push(info.delay);
    if (last) break;
    if (info.disposal === DISPOSE_TO_BACKGROUND) clearRectangle(screen, width, height, info);
    else if (before) before.copy(screen);
  }
  return count > 1 ? { frames, animation: { delays, loops: reader.loopCount() } } : { frames };
}

/** A GIF frame has at most 256 palette entries, one of them spent on transparency if any. */
const GIF_PALETTE_SIZE = 256;

/** Whether the opaque pixels use more distinct colours than `limit`; stops counting past it. */
function hasMoreColoursThan({ data }: RgbaBitmap, limit: number): boolean {
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
    if (colours.size > limit) return true;
  }
  return false;
}

/**
 * A bitmap made fit for a GIF frame, in place. A GIF that was decoded has at most 256 colours a
 * frame and the operations but blur map colours to colours or move pixels, so the result usually
 * fits a palette as it is and comes out lossless. Only an image with more colours (a blurred one)
 * is quantized (lossy; Wu's method, which measured closer than jimp's NeuQuant on gradients and as
 * close on photos); the quantizer rounds alpha too, so transparent pixels are restored after it.
 * GIF has no partial alpha: alpha 0 is transparent, anything else opaque.
 */
function toGifPixels(bitmap: RgbaBitmap): RgbaBitmap {
  const { data } = bitmap;
  const transparent = new Uint8Array(data.length / 4);
  let anyTransparent = false;
  for (let i = 3, pixel = 0; i < data.length; i += 4, pixel++) {
    if (data[i] === 0) {
      transparent[pixel] = 1;
      anyTransparent = true;
    } else {
      data[i] = 255;
    }
  }
  const maxColours = anyTransparent ? GIF_PALETTE_SIZE - 1 : GIF_PALETTE_SIZE;
  if (hasMoreColoursThan(bitmap, maxColours)) {
    GifUtil.quantizeWu(new BitmapImage(bitmap), maxColours);
    for (let i = 3, pixel = 0; i < data.length; i += 4, pixel++) data[i] = transparent[pixel] ? 0 : 255;
  }
  return bitmap;
}

/**
 * A GIF of the frames, each a whole picture at the screen's origin, with the animation's delays
 * and loop count. gifwrap marks each frame "restore to background": a viewer clears a frame before
 * drawing the next, so a transparent pixel of the next shows nothing, not what was under it. The
 * frames' pixels are changed (see toGifPixels): do not use them afterwards.
 */
export async function encodeGif({ frames, animation }: DecodedImage): Promise<Buffer> {
  const gifFrames = frames.map((bitmap, i) => {
    const frame = new GifFrame(toGifPixels(bitmap));
    // Set after construction: gifwrap's constructor turns a delay of 0 into 8.
    if (animation) frame.delayCentisecs = animation.delays[i] ?? 0;
    return frame;
  });
  // `loops: null` writes no loop extension (played once), as gifwrap documents; its types say number only.
  const spec: GifSpec = animation ? { loops: animation.loops as number } : {};
  const gif = await new GifCodec().encodeGif(gifFrames, spec);
  return gif.buffer;
}
