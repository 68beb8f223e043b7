/**
 * Bytes at the start of an image that tell its type (the magic numbers `detectImageType` reads:
 * at most 14, for a BMP).
 */
export const IMAGE_TYPE_BYTES = 16;

/**
 * Bytes at the start of an image read to find its type and the dimensions its header declares,
 * before anything decodes it: PNG, GIF and BMP say them in the first 26 bytes, but a JPEG's frame
 * header may follow 64 KB or more of metadata (EXIF, ICC profile), and a TIFF's first directory
 * may lie anywhere (past the head, its size is not known from the head).
 */
export const IMAGE_HEAD_BYTES = 128 * 1024;
