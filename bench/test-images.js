// Deterministic test images, made by the benchmark itself so every run measures the same bytes.
'use strict';
const crypto = require('node:crypto');
const png = require('@jimp/js-png').default();

/** A seeded linear congruential generator in [0, 1): plenty for sensor-like noise. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

const clamp = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * A photo-like opaque RGBA bitmap: a smooth sky, a soft blob, a fine texture and per-pixel noise,
 * as apps/worker/scripts/measure-png-deflate.js makes. The smooth shapes scale with the width
 * (the same picture at any size); texture and noise stay per pixel, as in a real photo. The
 * seed moves the blob and changes the noise, so images of one set differ byte for byte.
 */
function photoBitmap(width, height, seed) {
  const data = Buffer.alloc(width * height * 4);
  const random = seededRandom(seed);
  const scale = width / 512;
  const blobX = 300 + (seed % 7) * 15;
  const blobY = 220 + (seed % 5) * 12;
  for (let y = 0; y < height; y++) {
    const sy = y / scale;
    for (let x = 0; x < width; x++) {
      const sx = x / scale;
      const i = (y * width + x) * 4;
      const sky = 150 + 60 * Math.sin(sy / 90) + 25 * Math.cos(sx / 70);
      const blob = 90 * Math.exp(-((sx - blobX) ** 2 + (sy - blobY) ** 2) / 9000);
      const texture = 18 * Math.sin(x / 5.3 + Math.sin(y / 11)) * Math.cos(y / 7.1);
      data[i] = clamp(sky * 0.8 + blob + texture + (random() - 0.5) * 10);
      data[i + 1] = clamp(sky * 0.9 + blob * 0.6 + texture * 0.8 + (random() - 0.5) * 10);
      data[i + 2] = clamp(sky + blob * 0.3 - texture * 0.5 + (random() - 0.5) * 10);
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}

/** PNG as a common tool writes a photo: RGB, zlib level 6, adaptive filters. */
function encodePhotoPng(bitmap) {
  return Buffer.from(png.encode(bitmap, { deflateLevel: 6, deflateStrategy: 0, colorType: 2, inputHasAlpha: true }));
}

/** `count` different photo-like PNGs of one size. */
function photoPngs(width, height, count, firstSeed = 1) {
  return Array.from({ length: count }, (_, k) => encodePhotoPng(photoBitmap(width, height, firstSeed + k)));
}

/**
 * A valid RGBA PNG of about `bytes` bytes that does not compress: deterministic noise (AES-CTR
 * of zeros under a fixed key), no filters, zlib level 1. A square of side sqrt(bytes / 4).
 */
function noisePng(bytes, seed = 1) {
  const side = Math.max(1, Math.floor(Math.sqrt(bytes / 4)));
  const key = crypto.createHash('sha256').update(`pixelmill-bench-noise-${seed}`).digest().subarray(0, 16);
  const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const data = cipher.update(Buffer.alloc(side * side * 4));
  const encoded = png.encode(
    { data, width: side, height: side },
    { deflateLevel: 1, deflateStrategy: 0, filterType: 0, colorType: 6, inputHasAlpha: true },
  );
  return { bytes: Buffer.from(encoded), width: side, height: side };
}

module.exports = { photoBitmap, photoPngs, noisePng };
