import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  AcceptedSchema,
  ErrorBodySchema,
  frontendContract,
  kvContract,
  KvListSchema,
  masterContract,
  storageContract,
  TASK_STATES,
  TaskListSchema,
  taskdbContract,
  TaskStatusSchema,
  type ErrorCode,
  type Route,
  type RouteAuth,
  type TaskState,
  type TaskStatus,
} from '@pixelmill/contracts';
import { gifWithHugeFrame, jpegWithSecondFrame } from '@pixelmill/contracts/testing';
import jpeg from '@jimp/js-jpeg';
import { createTestSchema, type TestSchema } from '@pixelmill/kit/testing';
import { encode, makeBitmap } from './images';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

type Stack = Awaited<ReturnType<typeof startStack>>;
type Server = 'frontend' | 'master' | 'kv' | 'taskdb' | 'storage';
/** Which bearer token a request carries: by default the one its route asks for. */
type Credential = 'route' | 'none' | 'wrong' | 'internal' | 'worker';

const KIB = 1024;
const MIB = 1024 * KIB;
/** Small limits, so the over-limit cases stay cheap. */
const UPLOAD_LIMIT = 1 * MIB;
const OBJECT_LIMIT = 2 * MIB;
/** Node's default limit on request headers is 16 KiB; kit refuses URLs over 8 KiB. */
const HUGE_HEADER = 'a'.repeat(40 * KIB);
const HUGE_QUERY = 'a'.repeat(10 * KIB);
/** A name that must never show up as a file anywhere, whatever a traversal key tried. */
const CANARY = 'pixelmill-canary';

// ---------------------------------------------------------------------------------------------
// Bytes of bad uploads, built by hand

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The PNG signature and an IHDR chunk (8-bit RGBA) declaring the given size, with a valid CRC. */
function pngHeader(width: number, height: number): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bit depth
  data[9] = 6; // RGBA
  const typeAndData = Buffer.concat([Buffer.from('IHDR', 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([PNG_SIGNATURE, length, typeAndData, crc]);
}

/** A decompression bomb's header: a few hundred bytes that declare 100000×100000 pixels. */
const BOMB_PNG = Buffer.concat([pngHeader(100_000, 100_000), Buffer.from('junk after the header, no IDAT at all')]);
/** Passes the magic-byte check; only its size is wrong when it is wrong. */
const SMALL_PNG = Buffer.concat([pngHeader(16, 16), Buffer.alloc(64)]);
const OVER_UPLOAD_LIMIT = Buffer.concat([pngHeader(64, 64), Buffer.alloc(UPLOAD_LIMIT + 16 * KIB)]);
const OVER_OBJECT_LIMIT = Buffer.concat([pngHeader(64, 64), Buffer.alloc(OBJECT_LIMIT + 16 * KIB)]);
const TEXT = Buffer.from('this is plain text, not a picture, whatever its name says\n');
/** A WebP's RIFF header: a real image format pixelmill does not take. */
const WEBP = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1'), Buffer.alloc(64)]);
const PDF = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n', 'latin1');
/** 35 bytes: a 1×1 screen whose one frame is 65535×65535; the header alone passes. */
const HUGE_FRAME_GIF = Buffer.from(gifWithHugeFrame());
/** A real 16×16 JPEG with a second frame header of 60000×60000 before its end marker. */
const HUGE_SECOND_FRAME_JPEG = Buffer.from(
  jpegWithSecondFrame(Buffer.from(jpeg().encode(makeBitmap(16, 16), { quality: 90 })), 60_000, 60_000),
);

interface Part {
  name: string;
  data: Buffer | string;
  filename?: string;
  type?: string;
}
interface Body {
  body: Buffer;
  headers: Record<string, string>;
}
function multipart(parts: Part[]): Body {
  const boundary = `----pixelmill-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}`;
    const head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`;
    chunks.push(Buffer.from(head, 'latin1'), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
const imageForm = (data: Buffer, filename: string, extra: Part[] = []): Body =>
  multipart([...extra, { name: 'image', filename, type: 'application/octet-stream', data }]);
const raw = (data: Buffer | string, type: string): Body => ({ body: Buffer.from(data), headers: { 'content-type': type } });
const json = (value: unknown): Body => raw(typeof value === 'string' ? value : JSON.stringify(value), 'application/json');

// ---------------------------------------------------------------------------------------------
// The table

interface Row {
  /** What is sent, as "when …"; the expectation is the status. */
  name: string;
  server: Server;
  method: string;
  /** Sent as-is on the request line: no normalization of `..` or percent-encoding. */
  path: string;
  as?: Credential;
  send?: Body;
  headers?: Record<string, string>;
  /** The expected status; a list when either answer is right (e.g. a traversal key: 400 or 404). */
  status: number | number[];
  /** For 405s: the Allow header. */
  allow?: string;
  /** For refusals that must say why: what the error's message says. */
  message?: RegExp;
}

const UNKNOWN_ID = randomUUID();
/** An object stored before the table runs: objects are written once. */
const STORED_KEY = `${randomUUID()}_1`;
const LEASE = randomUUID();
const NOT_V4 = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const BAD_OR_MISSING = [400, 404];
const IMAGE = imageForm(SMALL_PNG, 'fine.png');

const frontendRows: Row[] = [
  // empty bodies and missing fields
  { name: 'an empty raw body', server: 'frontend', method: 'POST', path: '/newImage', send: raw('', 'image/png'), status: 400 },
  { name: 'a body-less request without Content-Type', server: 'frontend', method: 'POST', path: '/newImage', status: 400 },
  {
    name: 'a form without the image field',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: multipart([{ name: 'op', data: 'invert' }]),
    status: 400,
  },
  {
    name: 'a form with the image in another field',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: multipart([{ name: 'file', filename: 'a.png', data: SMALL_PNG }]),
    status: 400,
  },
  {
    name: 'a form with two images',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: multipart([
      { name: 'image', filename: 'a.png', data: SMALL_PNG },
      { name: 'image', filename: 'b.png', data: SMALL_PNG },
    ]),
    status: 400,
  },
  {
    name: 'an empty file in the form',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(Buffer.alloc(0), 'empty.png'),
    status: 400,
  },
  {
    name: 'a multipart body without a boundary',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(SMALL_PNG, 'multipart/form-data'),
    status: 400,
  },
  {
    name: 'a multipart body cut off in the middle',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: { ...IMAGE, body: IMAGE.body.subarray(0, IMAGE.body.length - 40) },
    status: 400,
  },
  // real type by magic bytes
  {
    name: 'a text file named .png (form)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(TEXT, 'notes.png'),
    status: 415,
  },
  {
    name: 'a text body declared image/png (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(TEXT, 'image/png'),
    status: 415,
  },
  { name: 'a WebP (form)', server: 'frontend', method: 'POST', path: '/newImage', send: imageForm(WEBP, 'photo.webp'), status: 415 },
  {
    name: 'a PDF declared image/png (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(PDF, 'image/png'),
    status: 415,
  },
  // limits
  {
    name: 'a PNG header declaring 100000×100000 pixels (form)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(BOMB_PNG, 'bomb.png'),
    status: 413,
  },
  {
    name: 'a PNG header declaring 100000×100000 pixels (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(BOMB_PNG, 'image/png'),
    status: 413,
  },
  {
    name: 'an upload over MAX_UPLOAD_BYTES (form)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(OVER_UPLOAD_LIMIT, 'big.png'),
    status: 413,
  },
  {
    name: 'an upload over MAX_UPLOAD_BYTES (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(OVER_UPLOAD_LIMIT, 'image/png'),
    status: 413,
  },
  {
    name: 'a 35-byte GIF with a 65535×65535 frame in a 1×1 screen (form)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(HUGE_FRAME_GIF, 'tiny.gif'),
    status: 413,
    message: /frame 1 of 1 is 65,535×65,535 pixels/,
  },
  {
    name: 'a 35-byte GIF with a 65535×65535 frame in a 1×1 screen (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(HUGE_FRAME_GIF, 'image/gif'),
    status: 413,
    message: /frame 1 of 1 is 65,535×65,535 pixels/,
  },
  {
    name: 'a JPEG with a second frame header of 60000×60000 (form)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(HUGE_SECOND_FRAME_JPEG, 'photo.jpg'),
    status: 413,
    message: /frame 2 of 2 is 60,000×60,000 pixels/,
  },
  {
    name: 'a JPEG with a second frame header of 60000×60000 (raw)',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(HUGE_SECOND_FRAME_JPEG, 'image/jpeg'),
    status: 413,
    message: /frame 2 of 2 is 60,000×60,000 pixels/,
  },
  // unknown operation, bad headers
  {
    name: 'an unknown op in the query',
    server: 'frontend',
    method: 'POST',
    path: '/newImage?op=sharpen',
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'an unknown op in the form',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: imageForm(SMALL_PNG, 'a.png', [{ name: 'op', data: 'rm -rf /' }]),
    status: 400,
  },
  {
    name: 'the op given twice in the query',
    server: 'frontend',
    method: 'POST',
    path: '/newImage?op=invert&op=grayscale',
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'an Idempotency-Key with spaces',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(SMALL_PNG, 'image/png'),
    headers: { 'idempotency-key': 'two words' },
    status: 400,
  },
  {
    name: 'an Idempotency-Key of 300 characters',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(SMALL_PNG, 'image/png'),
    headers: { 'idempotency-key': 'k'.repeat(300) },
    status: 400,
  },
  // ids
  { name: 'isReady without an id', server: 'frontend', method: 'GET', path: '/image/isReady', status: 400 },
  { name: 'isReady with an empty id', server: 'frontend', method: 'GET', path: '/image/isReady?id=', status: 400 },
  { name: 'isReady with a malformed id', server: 'frontend', method: 'GET', path: '/image/isReady?id=not-an-id', status: 400 },
  { name: 'isReady with a UUID that is not v4', server: 'frontend', method: 'GET', path: `/image/isReady?id=${NOT_V4}`, status: 400 },
  { name: 'isReady with a traversal id', server: 'frontend', method: 'GET', path: '/image/isReady?id=..%2F..%2Fetc%2Fpasswd', status: 400 },
  {
    name: 'isReady with two ids',
    server: 'frontend',
    method: 'GET',
    path: `/image/isReady?id=${UNKNOWN_ID}&id=${UNKNOWN_ID}`,
    status: 400,
  },
  { name: 'isReady with an unknown id', server: 'frontend', method: 'GET', path: `/image/isReady?id=${UNKNOWN_ID}`, status: 404 },
  { name: 'get with a malformed id', server: 'frontend', method: 'GET', path: '/image/get?id=12345', status: 400 },
  { name: 'get with an unknown id', server: 'frontend', method: 'GET', path: `/image/get?id=${UNKNOWN_ID}`, status: 404 },
  // paths and methods
  {
    name: 'a traversal path to the static files',
    server: 'frontend',
    method: 'GET',
    path: '/..%2F..%2Fpackage.json',
    status: BAD_OR_MISSING,
  },
  {
    name: 'a dot-dot encoded static path',
    server: 'frontend',
    method: 'GET',
    path: '/%2e%2e/%2e%2e/%2e%2e/package.json',
    status: BAD_OR_MISSING,
  },
  { name: 'a raw dot-dot static path', server: 'frontend', method: 'GET', path: '/app.js/../../../package.json', status: BAD_OR_MISSING },
  { name: 'a backslash static path', server: 'frontend', method: 'GET', path: '/..%5C..%5Cpackage.json', status: BAD_OR_MISSING },
  { name: 'an absolute static path', server: 'frontend', method: 'GET', path: '/%2Fetc%2Fpasswd', status: BAD_OR_MISSING },
  { name: 'an unknown route', server: 'frontend', method: 'GET', path: '/no/such/route', status: 404 },
  {
    name: 'PUT on /newImage',
    server: 'frontend',
    method: 'PUT',
    path: '/newImage',
    send: raw(SMALL_PNG, 'image/png'),
    status: 405,
    allow: 'POST',
  },
  { name: 'GET on /newImage', server: 'frontend', method: 'GET', path: '/newImage', status: 405, allow: 'POST' },
  {
    name: 'POST on /image/isReady',
    server: 'frontend',
    method: 'POST',
    path: `/image/isReady?id=${UNKNOWN_ID}`,
    status: 405,
    allow: 'GET, HEAD',
  },
  {
    name: 'DELETE on /image/get',
    server: 'frontend',
    method: 'DELETE',
    path: `/image/get?id=${UNKNOWN_ID}`,
    status: 405,
    allow: 'GET, HEAD',
  },
  { name: 'DELETE on the page', server: 'frontend', method: 'DELETE', path: '/', status: 405, allow: 'GET, HEAD' },
  // oversized requests
  {
    name: 'a 40 KB header',
    server: 'frontend',
    method: 'GET',
    path: `/image/isReady?id=${UNKNOWN_ID}`,
    headers: { 'x-padding': HUGE_HEADER },
    status: 431,
  },
  {
    name: 'a 40 KB header on an upload',
    server: 'frontend',
    method: 'POST',
    path: '/newImage',
    send: raw(SMALL_PNG, 'image/png'),
    headers: { 'x-padding': HUGE_HEADER },
    status: 431,
  },
  { name: 'a 10 KB query', server: 'frontend', method: 'GET', path: `/image/isReady?id=${HUGE_QUERY}`, status: 414 },
  {
    name: 'a 10 KB query on an upload',
    server: 'frontend',
    method: 'POST',
    path: `/newImage?op=${HUGE_QUERY}`,
    send: raw(SMALL_PNG, 'image/png'),
    status: 414,
  },
];

const masterRows: Row[] = [
  // frontend side (INTERNAL_TOKEN)
  { name: 'an empty body', server: 'master', method: 'POST', path: '/newImage', send: raw('', 'image/png'), status: 400 },
  { name: 'text declared image/png', server: 'master', method: 'POST', path: '/newImage', send: raw(TEXT, 'image/png'), status: 415 },
  { name: 'a WebP', server: 'master', method: 'POST', path: '/newImage', send: raw(WEBP, 'image/webp'), status: 415 },
  { name: 'a PDF', server: 'master', method: 'POST', path: '/newImage', send: raw(PDF, 'application/pdf'), status: 415 },
  {
    name: 'an upload over MAX_UPLOAD_BYTES',
    server: 'master',
    method: 'POST',
    path: '/newImage',
    send: raw(OVER_UPLOAD_LIMIT, 'image/png'),
    status: 413,
  },
  { name: 'an unknown op', server: 'master', method: 'POST', path: '/newImage?op=sharpen', send: raw(SMALL_PNG, 'image/png'), status: 400 },
  {
    name: 'a traversal owner',
    server: 'master',
    method: 'POST',
    path: '/newImage?owner=..%2F..%2Fetc',
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'an Idempotency-Key with control characters',
    server: 'master',
    method: 'POST',
    path: '/newImage',
    send: raw(SMALL_PNG, 'image/png'),
    headers: { 'idempotency-key': 'a\tb' },
    status: 400,
  },
  { name: 'isReady without an id', server: 'master', method: 'GET', path: '/isReady', status: 400 },
  { name: 'isReady with a malformed id', server: 'master', method: 'GET', path: '/isReady?id=42', status: 400 },
  { name: 'isReady with a malformed owner', server: 'master', method: 'GET', path: `/isReady?id=${UNKNOWN_ID}&owner=a%20b`, status: 400 },
  { name: 'isReady with an unknown id', server: 'master', method: 'GET', path: `/isReady?id=${UNKNOWN_ID}`, status: 404 },
  { name: 'get with a malformed id', server: 'master', method: 'GET', path: '/get?id=..%2F..%2Fetc%2Fpasswd', status: 400 },
  { name: 'get with an unknown id', server: 'master', method: 'GET', path: `/get?id=${UNKNOWN_ID}`, status: 404 },
  { name: 'usage with a traversal owner', server: 'master', method: 'GET', path: '/usage?owner=..%2F..%2Fetc', status: 400 },
  { name: 'DELETE on /newImage', server: 'master', method: 'DELETE', path: '/newImage', status: 405, allow: 'POST' },
  { name: 'POST on /isReady', server: 'master', method: 'POST', path: `/isReady?id=${UNKNOWN_ID}`, status: 405, allow: 'GET, HEAD' },
  { name: 'PUT on /get', server: 'master', method: 'PUT', path: `/get?id=${UNKNOWN_ID}`, status: 405, allow: 'GET, HEAD' },
  // worker side (WORKER_TOKEN)
  { name: 'getWork with a waitMs that is not a number', server: 'master', method: 'GET', path: '/getWork?waitMs=soon', status: 400 },
  { name: 'getWork with a negative waitMs', server: 'master', method: 'GET', path: '/getWork?waitMs=-1', status: 400 },
  { name: 'getWork with a waitMs over the maximum', server: 'master', method: 'GET', path: '/getWork?waitMs=3600000', status: 400 },
  {
    name: 'workFinished with malformed JSON',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: json('{"id": "'),
    status: 400,
  },
  { name: 'workFinished with an empty JSON body', server: 'master', method: 'POST', path: '/workFinished', send: json(''), status: 400 },
  {
    name: 'workFinished with JSON but no Content-Type',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: { body: Buffer.from(JSON.stringify({ id: UNKNOWN_ID, leaseToken: LEASE })), headers: {} },
    status: 400,
  },
  {
    name: 'workFinished with a JSON array',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: json([UNKNOWN_ID, LEASE]),
    status: 400,
  },
  {
    name: 'workFinished without the lease token',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: json({ id: UNKNOWN_ID }),
    status: 400,
  },
  {
    name: 'workFinished with a malformed id',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: json({ id: '../x', leaseToken: LEASE }),
    status: 400,
  },
  {
    name: 'workFinished with an unknown id',
    server: 'master',
    method: 'POST',
    path: '/workFinished',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE }),
    status: 404,
  },
  {
    name: 'workFailed without a reason',
    server: 'master',
    method: 'POST',
    path: '/workFailed',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE }),
    status: 400,
  },
  {
    name: 'workFailed with an empty reason',
    server: 'master',
    method: 'POST',
    path: '/workFailed',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE, reason: '' }),
    status: 400,
  },
  {
    name: 'workFailed with an unknown id',
    server: 'master',
    method: 'POST',
    path: '/workFailed',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE, reason: 'does not decode' }),
    status: 404,
  },
  {
    name: 'workFailed with a JSON body over the limit',
    server: 'master',
    method: 'POST',
    path: '/workFailed',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE, reason: 'x'.repeat(2 * MIB) }),
    status: 413,
  },
  {
    name: 'workReleased with a malformed lease token',
    server: 'master',
    method: 'POST',
    path: '/workReleased',
    send: json({ id: UNKNOWN_ID, leaseToken: 'mine', reason: 'shutdown' }),
    status: 400,
  },
  {
    name: 'workReleased with an unknown id',
    server: 'master',
    method: 'POST',
    path: '/workReleased',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE, reason: 'shutdown' }),
    status: 404,
  },
  {
    name: 'heartbeat with a number for an id',
    server: 'master',
    method: 'POST',
    path: '/heartbeat',
    send: json({ id: 7, leaseToken: LEASE }),
    status: 400,
  },
  {
    name: 'heartbeat with an unknown id',
    server: 'master',
    method: 'POST',
    path: '/heartbeat',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE }),
    status: 404,
  },
  { name: 'POST on /getWork', server: 'master', method: 'POST', path: '/getWork', status: 405, allow: 'GET, HEAD' },
  // the operators' routes (INTERNAL_TOKEN)
  { name: 'the admin list without a token', server: 'master', method: 'GET', path: '/admin/tasks?state=failed', as: 'none', status: 401 },
  {
    name: "the admin list with the worker's token",
    server: 'master',
    method: 'GET',
    path: '/admin/tasks?state=failed',
    as: 'worker',
    status: 401,
  },
  { name: 'the admin list of an unknown state', server: 'master', method: 'GET', path: '/admin/tasks?state=done', status: 400 },
  { name: 'the admin list without a state', server: 'master', method: 'GET', path: '/admin/tasks', status: 400 },
  { name: 'the admin list with a limit of 0', server: 'master', method: 'GET', path: '/admin/tasks?state=failed&limit=0', status: 400 },
  { name: 'the admin list with a forged cursor', server: 'master', method: 'GET', path: '/admin/tasks?state=failed&cursor=x', status: 400 },
  { name: 'a retry of a malformed id', server: 'master', method: 'POST', path: '/admin/tasks/not-an-id/retry', status: 400 },
  { name: 'a retry of an unknown task', server: 'master', method: 'POST', path: `/admin/tasks/${UNKNOWN_ID}/retry`, status: 404 },
  { name: 'a cancel of an unknown task', server: 'master', method: 'POST', path: `/admin/tasks/${UNKNOWN_ID}/cancel`, status: 404 },
  { name: 'a delete of an unknown task', server: 'master', method: 'DELETE', path: `/admin/tasks/${UNKNOWN_ID}`, status: 404 },
  { name: 'GET on an admin retry', server: 'master', method: 'GET', path: `/admin/tasks/${UNKNOWN_ID}/retry`, status: 405, allow: 'POST' },
  { name: 'GET on /workFinished', server: 'master', method: 'GET', path: '/workFinished', status: 405, allow: 'POST' },
  {
    name: 'PUT on /heartbeat',
    server: 'master',
    method: 'PUT',
    path: '/heartbeat',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE }),
    status: 405,
    allow: 'POST',
  },
  { name: 'an unknown route', server: 'master', method: 'GET', path: '/objects/inProgress/x', status: 404 },
  {
    name: 'a 40 KB header',
    server: 'master',
    method: 'GET',
    path: `/isReady?id=${UNKNOWN_ID}`,
    headers: { 'x-padding': HUGE_HEADER },
    status: 431,
  },
  { name: 'a 10 KB query', server: 'master', method: 'GET', path: `/getWork?waitMs=${HUGE_QUERY}`, status: 414 },
];

const kvRows: Row[] = [
  { name: 'set with malformed JSON', server: 'kv', method: 'POST', path: '/keys/config%2Fa', send: json('{value: unquoted}'), status: 400 },
  { name: 'set with an empty body', server: 'kv', method: 'POST', path: '/keys/config%2Fa', send: json(''), status: 400 },
  { name: 'set without a value', server: 'kv', method: 'POST', path: '/keys/config%2Fa', send: json({ ttlSeconds: 5 }), status: 400 },
  { name: 'set with a number for a value', server: 'kv', method: 'POST', path: '/keys/config%2Fa', send: json({ value: 5 }), status: 400 },
  {
    name: 'set with a negative TTL',
    server: 'kv',
    method: 'POST',
    path: '/keys/config%2Fa',
    send: json({ value: 'v', ttlSeconds: -1 }),
    status: 400,
  },
  {
    name: 'set with a value over 64 KiB',
    server: 'kv',
    method: 'POST',
    path: '/keys/config%2Fa',
    send: json({ value: 'v'.repeat(65 * KIB) }),
    status: 400,
  },
  {
    name: 'set with a JSON body over the limit',
    server: 'kv',
    method: 'POST',
    path: '/keys/config%2Fa',
    send: json({ value: 'v'.repeat(2 * MIB) }),
    status: 413,
  },
  {
    name: 'set with an unsupported charset',
    server: 'kv',
    method: 'POST',
    path: '/keys/config%2Fa',
    send: raw('{"value":"v"}', 'application/json; charset=iso-8859-1'),
    status: 415,
  },
  {
    name: 'set with a key of 300 characters',
    server: 'kv',
    method: 'POST',
    path: `/keys/${'k'.repeat(300)}`,
    send: json({ value: 'v' }),
    status: 400,
  },
  { name: 'set with a key with spaces', server: 'kv', method: 'POST', path: '/keys/a%20b', send: json({ value: 'v' }), status: 400 },
  // traversal keys
  { name: 'get ../ encoded', server: 'kv', method: 'GET', path: '/keys/..%2F..%2Fetc%2Fpasswd', status: BAD_OR_MISSING },
  { name: 'get %2e%2e%2f', server: 'kv', method: 'GET', path: '/keys/%2e%2e%2f%2e%2e%2fetc%2fpasswd', status: BAD_OR_MISSING },
  { name: 'get a raw ../ path', server: 'kv', method: 'GET', path: '/keys/../../etc/passwd', status: BAD_OR_MISSING },
  { name: 'get an absolute path', server: 'kv', method: 'GET', path: '/keys/%2Fetc%2Fpasswd', status: BAD_OR_MISSING },
  { name: 'get backslashes', server: 'kv', method: 'GET', path: '/keys/..%5C..%5Cetc%5Cpasswd', status: BAD_OR_MISSING },
  {
    name: 'get ../ inside a service key',
    server: 'kv',
    method: 'GET',
    path: '/keys/services%2F..%2F..%2Fetc%2Fpasswd',
    status: BAD_OR_MISSING,
  },
  {
    name: 'set ../ encoded',
    server: 'kv',
    method: 'POST',
    path: `/keys/..%2F..%2F${CANARY}`,
    send: json({ value: 'v' }),
    status: BAD_OR_MISSING,
  },
  {
    name: 'set an absolute path',
    server: 'kv',
    method: 'POST',
    path: `/keys/%2Ftmp%2F${CANARY}`,
    send: json({ value: 'v' }),
    status: BAD_OR_MISSING,
  },
  { name: 'delete ../ encoded', server: 'kv', method: 'DELETE', path: '/keys/..%2Fservices%2Fmaster', status: BAD_OR_MISSING },
  { name: 'get an unknown key', server: 'kv', method: 'GET', path: '/keys/no-such-key', status: 404 },
  { name: 'delete an unknown key', server: 'kv', method: 'DELETE', path: '/keys/no-such-key', status: 404 },
  { name: 'list with a prefix of 300 characters', server: 'kv', method: 'GET', path: `/keys?prefix=${'p'.repeat(300)}`, status: 400 },
  { name: 'list with two prefixes', server: 'kv', method: 'GET', path: '/keys?prefix=a&prefix=b', status: 400 },
  {
    name: 'PUT on a key',
    server: 'kv',
    method: 'PUT',
    path: '/keys/config%2Fa',
    send: json({ value: 'v' }),
    status: 405,
    allow: 'DELETE, GET, HEAD, POST',
  },
  { name: 'DELETE on the list', server: 'kv', method: 'DELETE', path: '/keys', status: 405, allow: 'GET, HEAD' },
  { name: 'an unknown route', server: 'kv', method: 'GET', path: '/values', status: 404 },
  { name: 'a 40 KB header', server: 'kv', method: 'GET', path: '/keys/no-such-key', headers: { 'x-padding': HUGE_HEADER }, status: 431 },
  { name: 'a 10 KB query', server: 'kv', method: 'GET', path: `/keys?prefix=${HUGE_QUERY}`, status: 414 },
];

const taskdbRows: Row[] = [
  { name: 'create with malformed JSON', server: 'taskdb', method: 'POST', path: '/tasks', send: json('{"id":'), status: 400 },
  { name: 'create with an empty body', server: 'taskdb', method: 'POST', path: '/tasks', send: json(''), status: 400 },
  { name: 'create with missing fields', server: 'taskdb', method: 'POST', path: '/tasks', send: json({ id: randomUUID() }), status: 400 },
  {
    name: 'create with a malformed id',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: '1', op: 'invert', contentType: 'image/png' }),
    status: 400,
  },
  {
    name: 'create with an unknown op',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'sharpen', contentType: 'image/png' }),
    status: 400,
  },
  {
    name: 'create with an unsupported type',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/webp' }),
    status: 400,
  },
  {
    name: 'create with a traversal owner',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/png', owner: '../../x' }),
    status: 400,
  },
  {
    name: 'create with a JSON body over the limit',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/png', pad: 'x'.repeat(2 * MIB) }),
    status: 413,
  },
  {
    name: 'create with a fingerprint that is not a SHA-256',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/png', idempotencyKey: 'k', fingerprint: 'abc' }),
    status: 400,
  },
  {
    name: 'create with negative source bytes',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/png', sourceBytes: -1 }),
    status: 400,
  },
  {
    name: 'create with a quota of text',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks',
    send: json({ id: randomUUID(), op: 'invert', contentType: 'image/png', quotaBytes: 'lots' }),
    status: 400,
  },
  { name: 'usage with a malformed owner', server: 'taskdb', method: 'GET', path: '/usage?owner=a%20b', status: 400 },
  { name: 'housekeeping without expireBefore', server: 'taskdb', method: 'GET', path: '/housekeeping', status: 400 },
  {
    name: 'housekeeping with a date that is not one',
    server: 'taskdb',
    method: 'GET',
    path: '/housekeeping?expireBefore=yesterday',
    status: 400,
  },
  {
    name: 'housekeeping with a limit over the maximum',
    server: 'taskdb',
    method: 'GET',
    path: `/housekeeping?expireBefore=${new Date().toISOString()}&limit=100000`,
    status: 400,
  },
  {
    name: 'housekeeping done with ids that are not ids',
    server: 'taskdb',
    method: 'POST',
    path: '/housekeeping',
    send: json({ sourcesDeleted: ['../x'], expired: [] }),
    status: 400,
  },
  {
    name: 'housekeeping done with 2000 ids',
    server: 'taskdb',
    method: 'POST',
    path: '/housekeeping',
    send: json({ sourcesDeleted: Array.from({ length: 2000 }, () => UNKNOWN_ID), expired: [] }),
    status: 400,
  },
  { name: 'get with a malformed id', server: 'taskdb', method: 'GET', path: '/tasks/not-a-uuid', status: 400 },
  { name: 'get with a traversal id', server: 'taskdb', method: 'GET', path: '/tasks/..%2F..%2Fetc%2Fpasswd', status: BAD_OR_MISSING },
  { name: 'get with an unknown id', server: 'taskdb', method: 'GET', path: `/tasks/${UNKNOWN_ID}`, status: 404 },
  { name: 'list without a state', server: 'taskdb', method: 'GET', path: '/tasks', status: 400 },
  { name: 'list with an unknown state', server: 'taskdb', method: 'GET', path: '/tasks?state=lost', status: 400 },
  { name: 'list with a limit of 0', server: 'taskdb', method: 'GET', path: '/tasks?state=failed&limit=0', status: 400 },
  { name: 'list with a limit that is not a number', server: 'taskdb', method: 'GET', path: '/tasks?state=failed&limit=all', status: 400 },
  { name: 'list with a forged cursor', server: 'taskdb', method: 'GET', path: '/tasks?state=failed&cursor=1%20OR%201%3D1', status: 400 },
  {
    name: 'change state with a malformed id',
    server: 'taskdb',
    method: 'POST',
    path: '/tasks/abc/state',
    send: json({ to: 'failed' }),
    status: 400,
  },
  {
    name: 'change state to an unknown state',
    server: 'taskdb',
    method: 'POST',
    path: `/tasks/${UNKNOWN_ID}/state`,
    send: json({ to: 'done' }),
    status: 400,
  },
  {
    name: 'change state without "to"',
    server: 'taskdb',
    method: 'POST',
    path: `/tasks/${UNKNOWN_ID}/state`,
    send: json({ error: 'x' }),
    status: 400,
  },
  {
    name: 'change state of an unknown id',
    server: 'taskdb',
    method: 'POST',
    path: `/tasks/${UNKNOWN_ID}/state`,
    send: json({ to: 'failed', leaseToken: LEASE, error: 'x' }),
    status: 404,
  },
  { name: 'claim without leaseMs', server: 'taskdb', method: 'POST', path: '/claims', send: json({}), status: 400 },
  {
    name: 'claim with a leaseMs below the minimum',
    server: 'taskdb',
    method: 'POST',
    path: '/claims',
    send: json({ leaseMs: 5 }),
    status: 400,
  },
  { name: 'claim with malformed JSON', server: 'taskdb', method: 'POST', path: '/claims', send: json('leaseMs=1000'), status: 400 },
  {
    name: 'extend lease without the token',
    server: 'taskdb',
    method: 'POST',
    path: `/tasks/${UNKNOWN_ID}/lease`,
    send: json({ leaseMs: 5000 }),
    status: 400,
  },
  {
    name: 'extend lease of an unknown id',
    server: 'taskdb',
    method: 'POST',
    path: `/tasks/${UNKNOWN_ID}/lease`,
    send: json({ leaseToken: LEASE, leaseMs: 5000 }),
    status: 404,
  },
  { name: 'PUT on /tasks', server: 'taskdb', method: 'PUT', path: '/tasks', send: json({}), status: 405, allow: 'GET, HEAD, POST' },
  {
    name: 'PUT on a task',
    server: 'taskdb',
    method: 'PUT',
    path: `/tasks/${UNKNOWN_ID}`,
    send: json({}),
    status: 405,
    allow: 'DELETE, GET, HEAD',
  },
  { name: 'DELETE of an unknown task', server: 'taskdb', method: 'DELETE', path: `/tasks/${UNKNOWN_ID}`, status: 404 },
  { name: 'GET on /claims', server: 'taskdb', method: 'GET', path: '/claims', status: 405, allow: 'POST' },
  { name: 'GET on a state change', server: 'taskdb', method: 'GET', path: `/tasks/${UNKNOWN_ID}/state`, status: 405, allow: 'POST' },
  { name: 'an unknown route', server: 'taskdb', method: 'GET', path: `/tasks/${UNKNOWN_ID}/history`, status: 404 },
  {
    name: 'a 40 KB header',
    server: 'taskdb',
    method: 'GET',
    path: `/tasks/${UNKNOWN_ID}`,
    headers: { 'x-padding': HUGE_HEADER },
    status: 431,
  },
  { name: 'a 10 KB query', server: 'taskdb', method: 'GET', path: `/tasks?state=failed&cursor=${HUGE_QUERY}`, status: 414 },
];

const object = (key: string, state = 'inProgress') => `/objects/${state}/${key}`;
const storageRows: Row[] = [
  { name: 'put an empty body', server: 'storage', method: 'POST', path: object(randomUUID()), send: raw('', 'image/png'), status: 400 },
  {
    name: 'put text declared image/png',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID()),
    send: raw(TEXT, 'image/png'),
    status: 415,
  },
  { name: 'put a WebP', server: 'storage', method: 'POST', path: object(randomUUID()), send: raw(WEBP, 'image/webp'), status: 415 },
  {
    name: 'put a PDF',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID(), 'finished'),
    send: raw(PDF, 'application/pdf'),
    status: 415,
  },
  {
    name: 'put a PNG declared image/jpeg',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID()),
    send: raw(SMALL_PNG, 'image/jpeg'),
    status: 415,
  },
  {
    name: 'put over MAX_OBJECT_BYTES',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID()),
    send: raw(OVER_OBJECT_LIMIT, 'image/png'),
    status: 413,
  },
  {
    name: 'put into an unknown state folder',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID(), 'tmp'),
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'put with a key with a dot',
    server: 'storage',
    method: 'POST',
    path: object(`${CANARY}.png`),
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'put with a key of 200 characters',
    server: 'storage',
    method: 'POST',
    path: object('k'.repeat(200)),
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  // traversal keys
  {
    name: 'put ../ encoded',
    server: 'storage',
    method: 'POST',
    path: object(`..%2F..%2F..%2F${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put %2e%2e%2f',
    server: 'storage',
    method: 'POST',
    path: object(`%2e%2e%2f%2e%2e%2f${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put a raw ../ path',
    server: 'storage',
    method: 'POST',
    path: object(`../../${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put an absolute path',
    server: 'storage',
    method: 'POST',
    path: object(`%2Ftmp%2F${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put backslashes',
    server: 'storage',
    method: 'POST',
    path: object(`..%5C..%5C${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put raw backslashes',
    server: 'storage',
    method: 'POST',
    path: object(`..\\..\\${CANARY}`),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'put into a traversal state',
    server: 'storage',
    method: 'POST',
    path: object(CANARY, '..%2F..'),
    send: raw(SMALL_PNG, 'image/png'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'get ../ encoded',
    server: 'storage',
    method: 'GET',
    path: object('..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd'),
    status: BAD_OR_MISSING,
  },
  { name: 'get %2e%2e%2f', server: 'storage', method: 'GET', path: object('%2e%2e%2f%2e%2e%2fkv%2Fkv.db'), status: BAD_OR_MISSING },
  {
    name: 'get ..%2F..%2Fetc%2Fpasswd',
    server: 'storage',
    method: 'GET',
    path: object('..%2F..%2Fetc%2Fpasswd', 'finished'),
    status: BAD_OR_MISSING,
  },
  {
    name: 'get a raw ../ path',
    server: 'storage',
    method: 'GET',
    path: '/objects/inProgress/../../../../etc/passwd',
    status: BAD_OR_MISSING,
  },
  { name: 'get an absolute path', server: 'storage', method: 'GET', path: object('%2Fetc%2Fpasswd'), status: BAD_OR_MISSING },
  { name: 'get backslashes', server: 'storage', method: 'GET', path: object('..%5C..%5C..%5Cetc%5Cpasswd'), status: BAD_OR_MISSING },
  { name: 'get the state folder itself', server: 'storage', method: 'GET', path: object('%2e%2e'), status: BAD_OR_MISSING },
  {
    name: 'get from a traversal state',
    server: 'storage',
    method: 'GET',
    path: object('passwd', '..%2F..%2F..%2Fetc'),
    status: BAD_OR_MISSING,
  },
  { name: 'head ../ encoded', server: 'storage', method: 'HEAD', path: object('..%2F..%2Fkv'), status: BAD_OR_MISSING },
  { name: 'delete ../ encoded', server: 'storage', method: 'DELETE', path: object('..%2Ffinished'), status: BAD_OR_MISSING },
  { name: 'delete an absolute path', server: 'storage', method: 'DELETE', path: object(`%2Ftmp%2F${CANARY}`), status: BAD_OR_MISSING },
  // ids and methods
  { name: 'get an unknown key', server: 'storage', method: 'GET', path: object(UNKNOWN_ID), status: 404 },
  { name: 'head an unknown key', server: 'storage', method: 'HEAD', path: object(UNKNOWN_ID, 'finished'), status: 404 },
  { name: 'delete an unknown key', server: 'storage', method: 'DELETE', path: object(UNKNOWN_ID), status: 404 },
  {
    name: 'get with a malformed signature',
    server: 'storage',
    method: 'GET',
    path: `${object(UNKNOWN_ID)}?expires=abc&signature=%3Cscript%3E`,
    status: 400,
  },
  {
    name: 'put with a maxBytes that is not a number',
    server: 'storage',
    method: 'POST',
    path: `${object(randomUUID(), 'finished')}?maxBytes=lots`,
    send: raw(SMALL_PNG, 'image/png'),
    status: 400,
  },
  {
    name: 'put over its own maxBytes',
    server: 'storage',
    method: 'POST',
    path: `${object(randomUUID(), 'finished')}?maxBytes=10`,
    send: raw(SMALL_PNG, 'image/png'),
    status: 413,
  },
  {
    name: 'put other bytes over a stored object',
    server: 'storage',
    method: 'POST',
    path: object(STORED_KEY, 'finished'),
    send: raw(Buffer.concat([SMALL_PNG, Buffer.from('other')]), 'image/png'),
    status: 409,
  },
  {
    name: 'PUT on an object',
    server: 'storage',
    method: 'PUT',
    path: object(randomUUID()),
    send: raw(SMALL_PNG, 'image/png'),
    status: 405,
    allow: 'DELETE, GET, HEAD, POST',
  },
  {
    name: 'PATCH on an object',
    server: 'storage',
    method: 'PATCH',
    path: object(randomUUID()),
    send: raw(SMALL_PNG, 'image/png'),
    status: 405,
    allow: 'DELETE, GET, HEAD, POST',
  },
  { name: 'an unknown route', server: 'storage', method: 'GET', path: '/objects', status: 404 },
  {
    name: 'a 40 KB header',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID()),
    send: raw(SMALL_PNG, 'image/png'),
    headers: { 'x-padding': HUGE_HEADER },
    status: 431,
  },
  { name: 'a 10 KB query', server: 'storage', method: 'GET', path: `${object(UNKNOWN_ID)}?signature=${HUGE_QUERY}`, status: 414 },
];

/** Strangers: the token decides before the input is looked at. */
const authRows: Row[] = [
  { name: 'kv without a token', server: 'kv', method: 'GET', path: '/keys/services%2Fmaster', as: 'none', status: 401 },
  { name: 'kv with a wrong token', server: 'kv', method: 'GET', path: '/keys?prefix=', as: 'wrong', status: 401 },
  {
    name: 'kv: WORKER_TOKEN reading a key outside services/',
    server: 'kv',
    method: 'GET',
    path: '/keys/config%2Fsecret',
    as: 'worker',
    status: 401,
  },
  {
    name: 'kv: WORKER_TOKEN reading services/../ ',
    server: 'kv',
    method: 'GET',
    path: '/keys/services%2F..%2Fconfig',
    as: 'worker',
    status: 401,
  },
  {
    name: 'kv: WORKER_TOKEN writing a service address',
    server: 'kv',
    method: 'POST',
    path: '/keys/services%2Fmaster',
    as: 'worker',
    send: json({ value: 'http://evil.example' }),
    status: 401,
  },
  { name: 'taskdb without a token', server: 'taskdb', method: 'GET', path: '/tasks?state=finished', as: 'none', status: 401 },
  {
    name: 'taskdb: a claim without a token',
    server: 'taskdb',
    method: 'POST',
    path: '/claims',
    as: 'none',
    send: json({ leaseMs: 60_000 }),
    status: 401,
  },
  {
    name: 'storage without a token',
    server: 'storage',
    method: 'POST',
    path: object(randomUUID()),
    as: 'none',
    send: raw(SMALL_PNG, 'image/png'),
    status: 401,
  },
  // A signature that does not verify is the contract's 403, not a missing credential.
  {
    name: 'storage with a forged signature',
    server: 'storage',
    method: 'GET',
    path: `${object(UNKNOWN_ID)}?expires=${Date.now() + 60_000}&signature=${'A'.repeat(43)}`,
    as: 'none',
    status: 403,
  },
  {
    name: 'storage: a signed URL whose maxBytes was raised',
    server: 'storage',
    method: 'POST',
    path: `${object(UNKNOWN_ID, 'finished')}?expires=${Date.now() + 60_000}&maxBytes=99999999&signature=${'A'.repeat(43)}`,
    as: 'none',
    send: raw(SMALL_PNG, 'image/png'),
    status: 403,
  },
  {
    name: 'storage with an expired signature',
    server: 'storage',
    method: 'POST',
    path: `${object(UNKNOWN_ID, 'finished')}?expires=1000&signature=${'A'.repeat(43)}`,
    as: 'none',
    send: raw(SMALL_PNG, 'image/png'),
    status: 403,
  },
  {
    name: 'storage: a traversal key without a token',
    server: 'storage',
    method: 'GET',
    path: object('..%2F..%2Fetc%2Fpasswd'),
    as: 'none',
    status: 401,
  },
  {
    name: 'master frontend side without a token',
    server: 'master',
    method: 'POST',
    path: '/newImage',
    as: 'none',
    send: raw(SMALL_PNG, 'image/png'),
    status: 401,
  },
  {
    name: 'master frontend side with WORKER_TOKEN',
    server: 'master',
    method: 'GET',
    path: `/isReady?id=${UNKNOWN_ID}`,
    as: 'worker',
    status: 401,
  },
  { name: 'master worker side without a token', server: 'master', method: 'GET', path: '/getWork', as: 'none', status: 401 },
  {
    name: 'master worker side with a wrong token',
    server: 'master',
    method: 'POST',
    path: '/workFailed',
    as: 'wrong',
    send: json({ id: UNKNOWN_ID, leaseToken: LEASE, reason: 'x' }),
    status: 401,
  },
];

const ROWS: Row[] = [...frontendRows, ...masterRows, ...kvRows, ...taskdbRows, ...storageRows, ...authRows];

// ---------------------------------------------------------------------------------------------
// HTTP without normalization: fetch would resolve `..` and `%2e%2e` before sending.

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function send(baseUrl: string, method: string, requestPath: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request({ host: hostname, port, method, path: requestPath, headers, agent: false }, (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    // A server may answer (413, 431) and close before it read all we send: the answer is what counts.
    request.on('error', (err) => {
      if (!answered) reject(err);
    });
    request.setTimeout(15_000, () => request.destroy(new Error(`${method} ${requestPath.slice(0, 80)} timed out`)));
    request.end(body);
  });
}

const CONTRACTS: Record<Server, Record<string, Route>> = {
  frontend: frontendContract,
  master: masterContract,
  kv: kvContract,
  taskdb: taskdbContract,
  storage: storageContract,
};

/** The `auth` of the contract route a path belongs to; paths no route matches count as the server's usual. */
function authOf(server: Server, requestPath: string): RouteAuth {
  const pathname = requestPath.split('?')[0]!;
  const route = Object.values(CONTRACTS[server]).find((r) => new RegExp(`^${r.path.replace(/:[A-Za-z0-9_]+/g, '[^/]+')}$`).test(pathname));
  return route?.auth ?? (server === 'frontend' ? 'public' : 'internal');
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  410: 'gone',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  431: 'headers_too_large',
};

const REPO_ROOT = path.resolve(__dirname, '..');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------

/** Where taskdb and kv keep their state: the embedded default, and the shared engine of a cluster. */
const BACKENDS = [
  { backend: 'SQLite', database: false },
  { backend: 'PostgreSQL', database: true },
] as const;

describe.each(BACKENDS)('bad input to every route (taskdb and kv on $backend)', ({ database }) => {
  let dir: string;
  let stack: Stack;
  let schema: TestSchema | undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-bad-input-'));
    schema = database ? await createTestSchema('bad_input') : undefined;
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      database: schema && { url: schema.url, schema: schema.schema, poolSize: 4 },
      envFor: {
        frontend: { UPLOAD_RATE_PER_MINUTE: '0', MAX_UPLOAD_BYTES: String(UPLOAD_LIMIT) },
        // Housekeeping would delete sources between the snapshots below: e2e/abuse.test.ts tests it.
        master: { MAX_UPLOAD_BYTES: String(UPLOAD_LIMIT), HOUSEKEEPING_INTERVAL_MS: String(3_600_000) },
        storage: { MAX_OBJECT_BYTES: String(OBJECT_LIMIT) },
      },
    });
    const stored = await call('storage', 'POST', object(STORED_KEY, 'finished'), { send: raw(SMALL_PNG, 'image/png') });
    expect(stored.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await schema?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const urlOf = (server: Server): string => stack.urls[server]!;

  const tokenHeader = (server: Server, requestPath: string, as: Credential = 'route'): Record<string, string> => {
    const tokens = stack.tokens!;
    const auth = as === 'route' ? authOf(server, requestPath) : as;
    const token =
      auth === 'internal'
        ? tokens.internal
        : auth === 'worker'
          ? tokens.worker
          : auth === 'wrong'
            ? 'not-the-token-of-this-stack'
            : undefined;
    return token ? { authorization: `Bearer ${token}` } : {};
  };

  const call = (
    server: Server,
    method: string,
    requestPath: string,
    options: { as?: Credential; send?: Body; headers?: Record<string, string> } = {},
  ) =>
    send(
      urlOf(server),
      method,
      requestPath,
      { ...tokenHeader(server, requestPath, options.as), ...options.send?.headers, ...options.headers },
      options.send?.body,
    );

  const taskIds = async (state: TaskState): Promise<string[]> => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const answer = await call('taskdb', 'GET', `/tasks?state=${state}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      const page = TaskListSchema.parse(JSON.parse(answer.body.toString()));
      ids.push(...page.ids);
      cursor = page.nextCursor;
    } while (cursor);
    return ids.sort();
  };

  /** What a refused request must not change: stored files, task rows, kv keys. */
  const snapshot = async () => {
    const storage = path.join(stack.dataDir, 'storage');
    const files = ['inProgress', 'finished', 'tmp'].flatMap((folder) =>
      fs.existsSync(path.join(storage, folder)) ? fs.readdirSync(path.join(storage, folder)).map((name) => `${folder}/${name}`) : [],
    );
    const tasks = Object.fromEntries(await Promise.all(TASK_STATES.map(async (state) => [state, await taskIds(state)] as const)));
    const keysAnswer = await call('kv', 'GET', '/keys?prefix=');
    expect(keysAnswer.status).toBe(200);
    const kvKeys = KvListSchema.parse(JSON.parse(keysAnswer.body.toString()))
      .items.map((item) => item.key)
      .sort();
    return { files: files.sort(), tasks: tasks as Record<TaskState, string[]>, kvKeys };
  };

  /** Every file anywhere under the test's folder (and next to it) named after the canary. */
  const canaries = (): string[] => {
    const found: string[] = [];
    const walk = (folder: string) => {
      for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
        const full = path.join(folder, entry.name);
        if (entry.name.includes(CANARY)) found.push(full);
        if (entry.isDirectory()) walk(full);
      }
    };
    walk(dir);
    for (const near of [os.tmpdir(), '/tmp']) {
      if (fs.existsSync(path.join(near, CANARY))) found.push(path.join(near, CANARY));
    }
    return found;
  };

  /** The contract's error body, with a message for people and no internals. */
  const expectErrorBody = (answer: Answer, status: number) => {
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const text = answer.body.toString();
    const body = ErrorBodySchema.parse(JSON.parse(text));
    expect(body.error.code).toBe(CODE_BY_STATUS[status]);
    expect(body.error.message.trim()).not.toBe('');
    for (const leak of [REPO_ROOT, dir, 'node_modules', '/dist/', '/src/']) expect(text).not.toContain(leak);
    expect(text).not.toMatch(/\bat [\w$.<>]+ \(|\n\s+at |\.[jt]s:\d+(:\d+)?/);
    expect(text).not.toMatch(/\b(TypeError|ReferenceError|SyntaxError|RangeError|ENOENT|EACCES|SQLITE_\w+)\b/);
    // Nor PostgreSQL's own words.
    expect(text).not.toMatch(/\b(relation|column) "|violates|syntax error at or near|invalid input syntax|duplicate key/);
    return body;
  };

  const expectHealthy = async (server: Server) => {
    const health = await call(server, 'GET', '/healthz');
    expect(health.status).toBe(200);
    // And no other process of the stack (the worker included) fell over on the way.
    const processes = stack.processes as Record<string, { exited(): boolean }>;
    expect(Object.keys(processes).filter((name) => processes[name]!.exited())).toEqual([]);
  };

  const title = (row: Row) => {
    const shown = row.path.length > 70 ? `${row.path.slice(0, 60)}…(${row.path.length} chars)` : row.path;
    const statuses = Array.isArray(row.status) ? row.status.join(' or ') : row.status;
    return `${row.server}: when ${row.name} (${row.method} ${shown}), then ${statuses}`;
  };

  it.each(ROWS.map((row) => [title(row), row] as const))('%s', async (_title, row) => {
    const before = await snapshot();

    const answer = await call(row.server, row.method, row.path, { as: row.as, send: row.send, headers: row.headers });

    const allowed = Array.isArray(row.status) ? row.status : [row.status];
    if (!allowed.includes(answer.status)) {
      // The status alone would hide why: show the answer.
      throw new Error(`expected ${allowed.join(' or ')}, got ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
    }
    const body = row.method !== 'HEAD' ? expectErrorBody(answer, answer.status) : undefined;
    if (row.allow !== undefined) expect(answer.headers.allow).toBe(row.allow);
    if (row.message !== undefined) expect(body?.error.message).toMatch(row.message);
    // Nothing outside the data folder was read either.
    expect(answer.body.toString()).not.toMatch(/root:.*:0:0:|SQLite format/);

    await expectHealthy(row.server);
    expect(await snapshot()).toEqual(before);
    expect(canaries()).toEqual([]);
  });

  const waitUntilFinal = async (server: 'frontend' | 'master', id: string, timeoutMs = 15_000): Promise<TaskStatus> => {
    const deadline = Date.now() + timeoutMs;
    const statusPath = server === 'frontend' ? `/image/isReady?id=${id}` : `/isReady?id=${id}`;
    for (;;) {
      const answer = await call(server, 'GET', statusPath);
      expect(answer.status).toBe(200);
      const status = TaskStatusSchema.parse(JSON.parse(answer.body.toString()));
      if (status.state === 'finished' || status.state === 'failed') return status;
      if (Date.now() > deadline) {
        throw new Error(`${id} still ${status.state} after ${timeoutMs} ms: is the worker claiming work (see its log)?`);
      }
      await sleep(100);
    }
  };

  /** An accepted upload leaves exactly its task (in `failed`) and its source file, nothing else. */
  const expectOnlyFailedTask = (before: Awaited<ReturnType<typeof snapshot>>, after: Awaited<ReturnType<typeof snapshot>>, id: string) => {
    expect(after.tasks).toEqual({ ...before.tasks, failed: [...before.tasks.failed, id].sort() });
    expect(after.files).toEqual([...before.files, `inProgress/${id}`].sort());
    expect(after.kvKeys).toEqual(before.kvKeys);
  };

  /** A failure reason for people: short, and no stack trace or paths. */
  const expectReadableReason = (reason: string | undefined) => {
    expect(reason).toBeDefined();
    expect(reason!.length).toBeGreaterThan(5);
    expect(reason!.length).toBeLessThanOrEqual(2000);
    expect(reason).not.toMatch(/\n\s+at |\.[jt]s:\d+/);
    expect(reason).not.toContain(REPO_ROOT);
  };

  it('frontend: when a truncated PNG is uploaded, then it is accepted (202) and ends failed with a readable reason', async () => {
    const before = await snapshot();
    const truncated = (await encode('image/png', makeBitmap(64, 64))).subarray(0, 100);

    const answer = await call('frontend', 'POST', '/newImage', {
      send: imageForm(truncated, 'broken.png'),
      headers: { accept: 'application/json' },
    });

    expect(answer.status).toBe(202);
    const { id } = AcceptedSchema.parse(JSON.parse(answer.body.toString()));
    const status = await waitUntilFinal('frontend', id);
    expect(status.state).toBe('failed');
    expectReadableReason(status.error);
    expect(status.error).toMatch(/decod|truncat|corrupt|damag|invalid|unexpected end/i);
    await expectHealthy('frontend');
    expectOnlyFailedTask(before, await snapshot(), id);
  });

  it('master: when a truncated PNG is submitted, then it is accepted (202) and ends failed with a readable reason', async () => {
    const before = await snapshot();
    const truncated = (await encode('image/png', makeBitmap(48, 48, { alpha: true }))).subarray(0, 80);

    const answer = await call('master', 'POST', '/newImage', { send: raw(truncated, 'image/png') });

    expect(answer.status).toBe(202);
    const { id } = AcceptedSchema.parse(JSON.parse(answer.body.toString()));
    const status = await waitUntilFinal('master', id);
    expect(status.state).toBe('failed');
    expectReadableReason(status.error);
    await expectHealthy('master');
    expectOnlyFailedTask(before, await snapshot(), id);
  });

  it.each([
    ['a 35-byte GIF has a 65535×65535 frame in a 1×1 screen', HUGE_FRAME_GIF, 'image/gif', /frame of 65535x65535 pixels/],
    ['a JPEG has a second frame header of 60000×60000', HUGE_SECOND_FRAME_JPEG, 'image/jpeg', /frame of 60000x60000 pixels/],
  ] as const)(
    'master: when %s, then it is accepted (202) and ends failed with a readable reason naming the frame',
    async (_name, bytes, type, reason) => {
      // Master leaves the pixel limits to the frontend and the worker, which checks every frame before decoding.
      const before = await snapshot();

      const answer = await call('master', 'POST', '/newImage', { send: raw(bytes, type) });

      expect(answer.status).toBe(202);
      const { id } = AcceptedSchema.parse(JSON.parse(answer.body.toString()));
      // Refused before decoding; decoding the GIF took a worker over a minute (issue 8).
      const status = await waitUntilFinal('master', id, 30_000);
      expect(status.state).toBe('failed');
      expectReadableReason(status.error);
      expect(status.error).toMatch(reason);
      await expectHealthy('master');
      expectOnlyFailedTask(before, await snapshot(), id);
    },
  );

  it('master: when a PNG header declares 100000×100000 pixels, then it is refused (413) or ends failed without being decoded', async () => {
    // Master may leave the pixel limit to the frontend and the worker: "413 or failed" (DESIGN, Security defaults).
    const before = await snapshot();

    const answer = await call('master', 'POST', '/newImage', { send: raw(BOMB_PNG, 'image/png') });

    expect([202, 413]).toContain(answer.status);
    if (answer.status === 413) {
      expectErrorBody(answer, 413);
      expect(await snapshot()).toEqual(before);
    } else {
      const { id } = AcceptedSchema.parse(JSON.parse(answer.body.toString()));
      // Refused from the header, the worker answers at once; had it tried to decode, it would crash or take long.
      const status = await waitUntilFinal('master', id, 10_000);
      expect(status.state).toBe('failed');
      expectReadableReason(status.error);
      expect(status.error).toMatch(/pixel|limit|large|declare/i);
      expectOnlyFailedTask(before, await snapshot(), id);
    }
    await expectHealthy('master');
  });
});
