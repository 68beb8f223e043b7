import {
  ErrorBodySchema,
  OPERATIONS,
  OPERATION_DESCRIPTIONS,
  OperationSchema,
  BLUR_RADIUS,
  ReadySchema,
  TASK_STATES,
  TASK_TRANSITIONS,
  TaskIdSchema,
  buildPath,
  detectImageType,
  frontendContract,
  kvContract,
  masterContract,
  storageContract,
  taskdbContract,
  StorageKeySchema,
  DeletionsBodySchema,
  MAX_DELETIONS,
  KvKeySchema,
  isBinary,
  isStream,
  BINARY,
  STREAM,
  defineRoute,
  createOpenApiDocument,
  type Route,
} from '../src';

describe('detectImageType', () => {
  it.each([
    ['image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]],
    ['image/jpeg', [0xff, 0xd8, 0xff, 0xe0, 0, 0x10]],
    ['image/gif', [0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0]],
    ['image/gif', [0x47, 0x49, 0x46, 0x38, 0x37, 0x61, 1, 0]],
    ['image/bmp', [0x42, 0x4d, 0x36, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0]],
    ['image/tiff', [0x49, 0x49, 0x2a, 0, 8, 0, 0, 0]],
    ['image/tiff', [0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8]],
  ])('when the bytes start like %s, then that is the type', (type, bytes) => {
    expect(detectImageType(Uint8Array.from(bytes))).toBe(type);
  });

  it.each([
    ['text', new TextEncoder().encode('hello, this is not an image')],
    ['nothing', new Uint8Array(0)],
    ['half a PNG signature', Uint8Array.of(0x89, 0x50, 0x4e, 0x47)],
    ['a GIF with a wrong version', new TextEncoder().encode('GIF80a')],
    ['a two-byte "BM"', new TextEncoder().encode('BM')],
    ['a BigTIFF (64-bit offsets, not supported)', Uint8Array.of(0x49, 0x49, 0x2b, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0)],
    ['a TIFF byte order with a wrong magic number', Uint8Array.of(0x49, 0x49, 0, 0x2a, 8, 0, 0, 0)],
  ])('when the bytes are %s, then there is no type', (_name, bytes) => {
    expect(detectImageType(bytes)).toBeNull();
  });
});

describe('buildPath', () => {
  it('fills parameters, each encoded as one path segment', () => {
    expect(buildPath(kvContract.get.path, { key: 'services/master' })).toBe('/keys/services%2Fmaster');
    expect(buildPath(storageContract.get.path, { state: 'finished', key: 'a-b' })).toBe('/objects/finished/a-b');
  });

  it('refuses a missing parameter', () => {
    expect(() => buildPath(taskdbContract.get.path, {})).toThrow('missing path parameter "id"');
  });
});

describe('schemas', () => {
  it('accepts only UUID v4 task ids', () => {
    expect(TaskIdSchema.safeParse('3f0c6a8e-1b2d-4c3e-9f4a-5b6c7d8e9f00').success).toBe(true);
    expect(TaskIdSchema.safeParse('3f0c6a8e-1b2d-1c3e-9f4a-5b6c7d8e9f00').success).toBe(false);
    expect(TaskIdSchema.safeParse('42').success).toBe(false);
  });

  it('keeps storage keys inside one folder', () => {
    for (const bad of ['..', '../etc', 'a/b', '/abs', '.hidden', 'a\\b', '']) {
      expect(StorageKeySchema.safeParse(bad).success).toBe(false);
    }
    expect(StorageKeySchema.safeParse('3f0c6a8e-1b2d-4c3e-9f4a-5b6c7d8e9f00').success).toBe(true);
  });

  it('when a deletion names no object, more than MAX_DELETIONS, or a key that leaves its folder, then it is refused', () => {
    const objects = (count: number, key = 'k') => Array.from({ length: count }, () => ({ state: 'finished', key }));
    expect(DeletionsBodySchema.safeParse({ objects: objects(MAX_DELETIONS) }).success).toBe(true);
    expect(DeletionsBodySchema.safeParse({ objects: [] }).success).toBe(false);
    expect(DeletionsBodySchema.safeParse({ objects: objects(MAX_DELETIONS + 1) }).success).toBe(false);
    expect(DeletionsBodySchema.safeParse({ objects: objects(1, '../etc') }).success).toBe(false);
    expect(DeletionsBodySchema.safeParse({ objects: [{ state: 'done', key: 'k' }] }).success).toBe(false);
  });

  it('allows slashes in kv keys but not a leading one or odd characters', () => {
    expect(KvKeySchema.safeParse('services/master').success).toBe(true);
    expect(KvKeySchema.safeParse('/services').success).toBe(false);
    expect(KvKeySchema.safeParse('a b').success).toBe(false);
  });

  it('describes errors with a code and a message', () => {
    expect(ErrorBodySchema.safeParse({ error: { code: 'not_found', message: 'no task' } }).success).toBe(true);
    expect(ErrorBodySchema.safeParse({ error: { code: 'teapot', message: 'x' } }).success).toBe(false);
  });

  it('makes finished and failed final, and every state reachable', () => {
    expect(TASK_TRANSITIONS.finished).toEqual([]);
    expect(TASK_TRANSITIONS.failed).toEqual([]);
    const reachable = new Set(Object.values(TASK_TRANSITIONS).flat());
    expect([...reachable].sort()).toEqual([...TASK_STATES].sort());
  });

  it("reports a dependency that refuses the service's token as a state of its own, and no state it does not know", () => {
    const ready = (checks: Record<string, string>) => ReadySchema.safeParse({ status: 'not_ready', service: 'master', checks });
    expect(ready({ taskdb: 'ok', storage: 'unauthorized' }).success).toBe(true);
    expect(ready({ taskdb: 'failing' }).success).toBe(true);
    expect(ready({ taskdb: 'forbidden' }).success).toBe(false);
  });

  it('defaults the operation to swap-red-blue', () => {
    expect(masterContract.newImage.query.parse({})).toEqual({ op: 'swap-red-blue' });
    expect(OPERATIONS).toContain('swap-red-blue');
  });

  it('when the operations are described, then each has a phrase of its own, and the rotations say which way they turn', () => {
    expect(Object.keys(OPERATION_DESCRIPTIONS)).toEqual([...OPERATIONS]);
    for (const op of OPERATIONS) expect(OPERATION_DESCRIPTIONS[op]).toMatch(/\w{3}/);
    expect(new Set(Object.values(OPERATION_DESCRIPTIONS)).size).toBe(OPERATIONS.length);
    for (const op of ['rotate-90', 'rotate-180', 'rotate-270'] as const) expect(OPERATION_DESCRIPTIONS[op]).toMatch(/turn/);
    expect(OPERATION_DESCRIPTIONS['rotate-90']).toMatch(/clockwise/);
    expect(OPERATION_DESCRIPTIONS.blur).toContain(`radius ${BLUR_RADIUS} pixels`);
  });

  it('when an operation outside the list is sent, then it is refused', () => {
    for (const op of OPERATIONS) expect(OperationSchema.parse(op)).toBe(op);
    for (const op of ['rotate-45', 'scale', 'Sepia', '']) expect(OperationSchema.safeParse(op).success).toBe(false);
  });
});

describe('every contract', () => {
  const contracts = { kvContract, taskdbContract, storageContract, masterContract, frontendContract };

  it.each(Object.entries(contracts))('%s documents a JSON error body for its client errors', (_name, contract: Record<string, Route>) => {
    for (const route of Object.values(contract)) {
      for (const [status, spec] of Object.entries(route.responses)) {
        if (Number(status) >= 400 && route.method !== 'HEAD') expect(spec).toBe(ErrorBodySchema);
        if (Number(status) < 300) expect(spec).toBeDefined();
      }
    }
  });

  it('marks image bodies as binary, never JSON', () => {
    expect(isBinary(masterContract.newImage.body)).toBe(true);
    expect(isBinary(storageContract.put.body)).toBe(true);
    expect(isBinary(masterContract.get.responses[200])).toBe(true);
    expect(isBinary(frontendContract.get.responses[200])).toBe(true);
  });

  it('marks the uploads that are passed on as they arrive as streamed, answers never', () => {
    for (const route of [masterContract.newImage, storageContract.put, frontendContract.newImage]) expect(isStream(route.body)).toBe(true);
    expect(isStream(BINARY)).toBe(false);
    expect(isStream(masterContract.get.responses[200])).toBe(false);
  });
});

describe('a streamed body (STREAM)', () => {
  it('is a binary body to clients and documents: documented exactly as BINARY is', () => {
    expect(isBinary(STREAM)).toBe(true);
    const upload = (body: typeof BINARY) =>
      defineRoute({ method: 'POST', path: '/upload', summary: 'bytes in', body, responses: { 204: BINARY } });
    const documentOf = (route: Route) =>
      createOpenApiDocument({ service: 'test', contract: { upload: route }, version: '1.0.0' }).paths['/upload'];
    expect(documentOf(upload(STREAM))).toEqual(documentOf(upload(BINARY)));
  });
});
