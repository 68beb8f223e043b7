/**
 * What a decoder's exception means for the user who sent the image. The decoders (pngjs,
 * jpeg-js, bmp-ts, omggif, utif) throw terse or misleading messages: pngjs reports a truncated file as
 * "There are some read requests waitng on finished stream". A failure is put in one of three
 * words (the file is broken, uses an unsupported variant, or is too large to decode), followed by
 * a readable detail when one is known, or the decoder's own words when they say something.
 */

export const TRUNCATED_OR_CORRUPT = 'the file is truncated or corrupt';
export const UNSUPPORTED = 'the file uses a variant of the format that is not supported';
const TOO_LARGE = 'the image needs more memory to decode than allowed';

interface KnownMessage {
  pattern: RegExp;
  what: string;
  /** Replaces the decoder's message; null leaves it out (a bug's words say nothing to a user). */
  detail?: string | null;
}

const ENDS_EARLY = 'it ends too early';

const KNOWN_MESSAGES: readonly KnownMessage[] = [
  // pngjs (its parser and zlib), bmp-ts reading past the end of its buffer, jpeg-js, omggif.
  {
    pattern: /read requests waitng on finished stream|ran out of data|unexpected end of (input|file)/i,
    what: TRUNCATED_OR_CORRUPT,
    detail: ENDS_EARLY,
  },
  { pattern: /^crc error/i, what: TRUNCATED_OR_CORRUPT, detail: 'a checksum does not match' },
  {
    pattern: /incorrect header check|invalid (block type|distance|stored block|code|literal)|invalid (compressed|inflate) data/i,
    what: TRUNCATED_OR_CORRUPT,
    detail: 'its compressed data is damaged',
  },
  { pattern: /is out of range|outside (the )?buffer bounds|beyond buffer length/i, what: TRUNCATED_OR_CORRUPT, detail: ENDS_EARLY },
  { pattern: /^marker was not found$/i, what: TRUNCATED_OR_CORRUPT, detail: ENDS_EARLY },
  { pattern: /^frame index out of range/i, what: TRUNCATED_OR_CORRUPT, detail: 'it ends before its first frame' },
  { pattern: /maxResolutionInMP|maxMemoryUsageInMB|could not allocate enough memory/i, what: TOO_LARGE },
  // V8 refusing a Buffer or typed array (the system is out of memory, or past its largest buffer).
  {
    pattern: /array buffer allocation failed|invalid typed array length|cannot create a buffer larger than/i,
    what: TOO_LARGE,
    detail: null,
  },
  { pattern: /unsupported|only single frame|unrecognised (depth|color type)/i, what: UNSUPPORTED },
];

/** The reason after "could not decode <type>: ", from what the decoder threw. */
export function describeDecoderError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const known = KNOWN_MESSAGES.find(({ pattern }) => pattern.test(message));
  // A TypeError or the like is the decoder tripping over bytes it did not expect: its words
  // ("Cannot set properties of undefined") name its internals, not the file.
  const internal = err instanceof TypeError || err instanceof ReferenceError;
  let detail: string | null = internal ? null : message.trim() || null;
  if (known?.detail !== undefined) detail = known.detail;
  const what = known?.what ?? TRUNCATED_OR_CORRUPT;
  return detail ? `${what} (${detail})` : what;
}
