import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { detectImageType, type ImageType } from '@pixelmill/contracts';
import { EmptyBodyError, ObjectExistsError, StreamLimitError, type ObjectStore } from '../../src/data-access/object-store';
import { BACKENDS, startBackend, type ObjectBackend, type ObjectPlace } from '../object-backends';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_SIGNATURE = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
const MB = 1024 * 1024;

/** An image's signature and then `size` varied bytes, so a chunk lost, doubled or out of order shows. */
function image(size: number, seed = 1, signature = PNG_SIGNATURE): Buffer {
  const bytes = Buffer.alloc(signature.length + size);
  signature.copy(bytes);
  for (let i = signature.length; i < bytes.length; i += 1) bytes[i] = (i * 31 + seed * 7 + (i >> 11)) & 0xff;
  return bytes;
}

/** A PNG of `size` bytes whose header declares `width`×`height`. */
function pngDeclaring(width: number, height: number, size: number): Buffer {
  const bytes = image(size - PNG_SIGNATURE.length, 3);
  bytes.writeUInt32BE(13, 8);
  bytes.write('IHDR', 12, 'latin1');
  bytes.writeUInt32BE(width, 16);
  bytes.writeUInt32BE(height, 20);
  return bytes;
}

/** A JPEG whose frame header, declaring `width`×`height`, follows 64 KB of metadata (an APP1 segment). */
function jpegDeclaring(width: number, height: number): Buffer {
  const app1 = Buffer.alloc(2 + 65_535, 0x5a);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(65_535, 2);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app1, sof, image(50_000, 4).subarray(PNG_SIGNATURE.length)]);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The bytes as a stream in chunks of the given sizes, repeated. */
function streamOf(bytes: Buffer, chunkSizes: number[] = [64 * 1024]): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0, i = 0; offset < bytes.length; i += 1) {
        const size = chunkSizes[i % chunkSizes.length]!;
        yield bytes.subarray(offset, offset + size);
        offset += size;
      }
    })(),
    { objectMode: false },
  );
}

/** A body that never ends; `produced()` tells how much of it was read. */
function endless(): { stream: Readable; produced(): number } {
  let produced = 0;
  const chunk = image(64 * 1024 - PNG_SIGNATURE.length);
  const stream = Readable.from(
    (function* () {
      for (;;) {
        produced += chunk.length;
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
  return { stream, produced: () => produced };
}

/** The first `cut` bytes, then the failure of a client that went away. */
function brokenAfter(bytes: Buffer, cut: number): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < cut; offset += 64 * 1024) yield bytes.subarray(offset, Math.min(offset + 64 * 1024, cut));
      throw new Error('the client went away');
    })(),
    { objectMode: false },
  );
}

const sniff = (head: Buffer): ImageType => {
  const type = detectImageType(head);
  if (!type) throw new Error('not an image');
  return type;
};
const writeOptions = (maxBytes = 32 * MB) => ({ maxBytes, check: sniff });

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each(BACKENDS)('object store on %s', (name) => {
  let backend: ObjectBackend;
  let place: ObjectPlace;
  let store: ObjectStore;

  beforeAll(async () => {
    backend = await startBackend(name);
  });
  afterAll(async () => {
    await backend.stop();
  });
  beforeEach(async () => {
    place = await backend.place();
    store = place.store();
  });
  afterEach(async () => {
    await place.dispose();
  });

  const put = (key: string, bytes: Buffer, state: 'inProgress' | 'finished' = 'finished', maxBytes?: number) =>
    store.putStream(state, key, streamOf(bytes), writeOptions(maxBytes));

  it('when bytes are stored, then they lie under their state and key, and come back whole with their type and size', async () => {
    const bytes = image(300 * 1024);

    expect(await put('a', bytes)).toEqual({ size: bytes.length, contentType: 'image/png' });

    expect(await place.list()).toEqual(['finished/a']);
    expect((await place.read('finished', 'a'))!.equals(bytes)).toBe(true);
    expect(await store.stat('finished', 'a')).toEqual({ size: bytes.length, contentType: 'image/png' });
    const opened = await store.open('finished', 'a');
    expect(opened).toMatchObject({ size: bytes.length, contentType: 'image/png' });
    expect(opened!.range).toBeUndefined();
    expect((await readAll(opened!.stream)).equals(bytes)).toBe(true);
  });

  it.each([
    ['a PNG in odd chunks', () => pngDeclaring(640, 480, 300 * 1024), [7, 3, 65_536, 1000], 'image/png'],
    ['a JPEG whose frame header lies past the first chunks', () => jpegDeclaring(300, 200), [7, 3, 65_536, 1000], 'image/jpeg'],
    ['a PNG larger than the head, in one chunk', () => pngDeclaring(1024, 768, 400 * 1024), [400 * 1024], 'image/png'],
  ] as const)(
    'when a digest is asked for %s, then the write answers the SHA-256 of its bytes and what its head declares',
    async (_what, make, chunks, contentType) => {
      const bytes = make();
      const { width, height } =
        contentType === 'image/png' ? { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) } : { width: 300, height: 200 };

      const stored = await store.putStream('finished', 'digested', streamOf(bytes, [...chunks]), { ...writeOptions(), digest: true });

      expect(stored).toEqual({ size: bytes.length, contentType, digest: { sha256: sha256(bytes), facts: { contentType, width, height } } });
      expect((await place.read('finished', 'digested'))!.equals(bytes)).toBe(true);
    },
  );

  it('when the same bytes are written again with a digest asked for, then the digest comes again; bytes without a readable header give nulls', async () => {
    const bytes = image(20_000, 6);
    const expected = {
      size: bytes.length,
      contentType: 'image/png',
      digest: { sha256: sha256(bytes), facts: { contentType: 'image/png', width: null, height: null } },
    };

    expect(await store.putStream('finished', 'twice', streamOf(bytes), { ...writeOptions(), digest: true })).toEqual(expected);
    expect(await place.store().putStream('finished', 'twice', streamOf(bytes), { ...writeOptions(), digest: true })).toEqual(expected);
  });

  it('when nothing is stored under a key, then stat and open answer undefined and delete false', async () => {
    expect(await store.stat('finished', 'none')).toBeUndefined();
    expect(await store.open('finished', 'none')).toBeUndefined();
    expect(await store.open('finished', 'none', { start: 0, end: 3 })).toBeUndefined();
    expect(await store.delete('finished', 'none')).toBe(false);
  });

  it('when an object is deleted, then it is gone, and a second delete says it was not there', async () => {
    await put('d', image(1000));

    expect(await store.delete('finished', 'd')).toBe(true);

    expect(await store.stat('finished', 'd')).toBeUndefined();
    expect(await place.list()).toEqual([]);
    expect(await store.delete('finished', 'd')).toBe(false);
  });

  it('when several objects of both states are deleted in one call, with one that is not stored, then each is gone and the answer counts all of them', async () => {
    await put('a', image(1000, 1), 'inProgress');
    await put('a', image(1000, 2), 'finished');
    await put('b', image(1000, 3), 'finished');
    await put('kept', image(1000, 4), 'finished');
    const objects = [
      { state: 'inProgress', key: 'a' },
      { state: 'finished', key: 'a' },
      { state: 'finished', key: 'b' },
      { state: 'finished', key: 'none' },
    ] as const;

    expect(await store.deleteMany(objects)).toBe(4);

    expect(await place.list()).toEqual(['finished/kept']);
    expect(await store.deleteMany(objects)).toBe(4);
  });

  it('when a range is asked for, then those bytes come with the range served; one past the end gets the whole object', async () => {
    const bytes = image(1000);
    await put('r', bytes);
    const read = async (range: { start: number; end?: number }) => {
      const opened = (await store.open('finished', 'r', range))!;
      return { size: opened.size, range: opened.range, bytes: await readAll(opened.stream) };
    };

    expect(await read({ start: 2, end: 9 })).toEqual({ size: bytes.length, range: { start: 2, end: 9 }, bytes: bytes.subarray(2, 10) });
    expect(await read({ start: bytes.length - 5 })).toEqual({
      size: bytes.length,
      range: { start: bytes.length - 5, end: bytes.length - 1 },
      bytes: bytes.subarray(bytes.length - 5),
    });
    expect(await read({ start: 10, end: bytes.length + 100 })).toEqual({
      size: bytes.length,
      range: { start: 10, end: bytes.length - 1 },
      bytes: bytes.subarray(10),
    });
    expect(await read({ start: bytes.length + 1 })).toEqual({ size: bytes.length, range: undefined, bytes });
  });

  it('when a key is written again, even by another instance, then the same bytes are a success and other bytes are refused, keeping the first', async () => {
    const first = image(200 * 1024, 1);
    const sameSize = image(200 * 1024, 2);
    await put('o', first);
    const other = place.store();

    expect(await other.putStream('finished', 'o', streamOf(first, [1000, 70_000]), writeOptions())).toEqual({
      size: first.length,
      contentType: 'image/png',
    });
    await expect(other.putStream('finished', 'o', streamOf(sameSize), writeOptions())).rejects.toBeInstanceOf(ObjectExistsError);
    await expect(put('o', image(10, 1))).rejects.toBeInstanceOf(ObjectExistsError);
    await expect(put('o', Buffer.concat([first, Buffer.from('more')]))).rejects.toBeInstanceOf(ObjectExistsError);

    expect((await place.read('finished', 'o'))!.equals(first)).toBe(true);
    expect(await place.list()).toEqual(['finished/o']);
  });

  it('when the same key is used in both states, then the two objects are kept apart', async () => {
    const png = image(500, 1);
    const jpeg = image(700, 2, JPEG_SIGNATURE);
    await put('k', png, 'inProgress');
    await put('k', jpeg, 'finished');

    expect(await store.stat('inProgress', 'k')).toEqual({ size: png.length, contentType: 'image/png' });
    expect(await store.stat('finished', 'k')).toEqual({ size: jpeg.length, contentType: 'image/jpeg' });
    expect(await store.delete('inProgress', 'k')).toBe(true);
    expect((await readAll((await store.open('finished', 'k'))!.stream)).equals(jpeg)).toBe(true);
    expect(await place.list()).toEqual(['finished/k']);
  });

  it('when a body is as large as the limit, then it is stored; one byte more is refused with nothing left', async () => {
    const bytes = image(100 * 1024);

    await expect(put('over', Buffer.concat([bytes, Buffer.from([0])]), 'finished', bytes.length)).rejects.toBeInstanceOf(StreamLimitError);
    expect(await put('exact', bytes, 'finished', bytes.length)).toEqual({ size: bytes.length, contentType: 'image/png' });

    expect(await place.list()).toEqual(['finished/exact']);
  });

  it('when a body never ends, then the write fails soon after the limit, having read little more, and leaves nothing', async () => {
    const limit = 7 * MB;
    const body = endless();

    await expect(store.putStream('inProgress', 'endless', body.stream, writeOptions(limit))).rejects.toBeInstanceOf(StreamLimitError);

    expect(body.produced()).toBeLessThan(limit + MB);
    expect(await place.list()).toEqual([]);
  });

  it('when a body is empty, then the write fails with EmptyBodyError and leaves nothing', async () => {
    await expect(put('empty', Buffer.alloc(0))).rejects.toBeInstanceOf(EmptyBodyError);
    expect(await place.list()).toEqual([]);
  });

  it('when the first bytes arrive in tiny chunks, then the type is told from them all; bytes the check refuses leave nothing', async () => {
    const jpeg = image(5000, 3, JPEG_SIGNATURE);
    const heads: Buffer[] = [];
    const check = (head: Buffer) => {
      heads.push(head);
      return sniff(head);
    };

    expect(await store.putStream('inProgress', 'tiny', streamOf(jpeg, [1, 2, 3, 4000]), { maxBytes: MB, check })).toEqual({
      size: jpeg.length,
      contentType: 'image/jpeg',
    });
    expect(heads[0]!.subarray(0, 4).equals(JPEG_SIGNATURE)).toBe(true);
    await expect(store.putStream('inProgress', 'text', streamOf(Buffer.from('hello, not an image')), writeOptions())).rejects.toThrow(
      'not an image',
    );
    await expect(store.putStream('inProgress', 'short', streamOf(Buffer.from('hi')), writeOptions())).rejects.toThrow('not an image');

    expect(await place.list()).toEqual(['inProgress/tiny']);
  });

  it('when a 12 MB body streams in odd chunks, then it is stored in parts and reads back with the same SHA-256', async () => {
    const bytes = image(12 * MB + 12_345, 5);

    const stored = await store.putStream('finished', 'big', streamOf(bytes, [7, 3, 65_536, 1000, 1_500_000]), writeOptions());

    expect(stored).toEqual({ size: bytes.length, contentType: 'image/png' });
    const back = await readAll((await store.open('finished', 'big'))!.stream);
    expect(back.length).toBe(bytes.length);
    expect(sha256(back)).toBe(sha256(bytes));
    expect(sha256((await place.read('finished', 'big'))!)).toBe(sha256(bytes));
  }, 60_000);

  it('when a range of a large object is asked for, then those bytes come, streamed', async () => {
    const bytes = image(3 * MB, 6);
    await put('large', bytes);
    const read = async (range?: { start: number; end?: number }) => {
      const opened = (await store.open('finished', 'large', range))!;
      return { range: opened.range, bytes: await readAll(opened.stream) };
    };

    const middle = await read({ start: MB + 7, end: 2 * MB + 100 });
    expect(middle.range).toEqual({ start: MB + 7, end: 2 * MB + 100 });
    expect(middle.bytes.equals(bytes.subarray(MB + 7, 2 * MB + 101))).toBe(true);
    const tail = await read({ start: bytes.length - 10 });
    expect(tail.bytes.equals(bytes.subarray(bytes.length - 10))).toBe(true);
    expect((await read()).bytes.equals(bytes)).toBe(true);
  }, 60_000);

  it.each([
    ['within the first part', 100 * 1024],
    ['after the first part went up', 7 * MB],
  ])(
    'when a body breaks off %s, then the write fails with its error and leaves nothing',
    async (_when, cut) => {
      const bytes = image(12 * MB);

      await expect(store.putStream('inProgress', 'broken', brokenAfter(bytes, cut), writeOptions())).rejects.toThrow(
        'the client went away',
      );

      expect(await place.list()).toEqual([]);
      expect(await store.stat('inProgress', 'broken')).toBeUndefined();
    },
    60_000,
  );

  it('when an object was put there by another instance, then this one serves it', async () => {
    const bytes = image(2000, 9, JPEG_SIGNATURE);
    await place.write('finished', 'theirs', bytes, 'image/jpeg');

    expect(await store.stat('finished', 'theirs')).toEqual({ size: bytes.length, contentType: 'image/jpeg' });
    expect((await readAll((await store.open('finished', 'theirs'))!.stream)).equals(bytes)).toBe(true);
  });

  it('when the store can take writes, then ping resolves', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
});
