import {
  CreateTaskBodySchema,
  MAX_RESIZE_PIXELS,
  MAX_RESIZE_SIDE,
  OPERATIONS,
  OPERATION_DESCRIPTIONS,
  TaskSchema,
  WorkSchema,
  frontendContract,
  masterContract,
  operationParamsProblem,
  resultDimensions,
  resultSizeProblem,
  type Operation,
} from '../src';

/** The messages of a refused parse, or [] when it passes. */
const issues = (result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }): string[] =>
  result.success ? [] : result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);

describe("an upload's operation parameters", () => {
  const query = (raw: Record<string, string>) => issues(masterContract.newImage.query.safeParse(raw));

  it('when resize comes with a width, a height or both, then the query passes, the sides as numbers', () => {
    expect(masterContract.newImage.query.parse({ op: 'resize', width: '800' })).toEqual({ op: 'resize', width: 800 });
    expect(masterContract.newImage.query.parse({ op: 'resize', height: '600' })).toEqual({ op: 'resize', height: 600 });
    expect(masterContract.newImage.query.parse({ op: 'resize', width: '1', height: `${MAX_RESIZE_SIDE}` })).toEqual({
      op: 'resize',
      width: 1,
      height: MAX_RESIZE_SIDE,
    });
  });

  it('when resize comes with neither side, then it is refused, saying what it needs', () => {
    expect(query({ op: 'resize' })).toEqual([': op=resize needs width, height or both (in pixels)']);
  });

  it.each([
    ['zero', '0'],
    ['negative', '-5'],
    ['too large', `${MAX_RESIZE_SIDE + 1}`],
    ['not a whole number', '12.5'],
    ['not a number', 'wide'],
    ['empty', ''],
  ])('when a side is %s, then it is refused, naming the side and its bounds', (_what, value) => {
    expect(query({ op: 'resize', width: value })).toEqual([`width: must be a whole number of pixels from 1 to ${MAX_RESIZE_SIDE}`]);
    expect(query({ op: 'resize', width: '10', height: value })).toEqual([
      `height: must be a whole number of pixels from 1 to ${MAX_RESIZE_SIDE}`,
    ]);
  });

  it('when both sides make more pixels than MAX_RESIZE_PIXELS, then it is refused; as many passes', () => {
    expect(MAX_RESIZE_SIDE * MAX_RESIZE_SIDE).toBeGreaterThan(MAX_RESIZE_PIXELS);
    expect(query({ op: 'resize', width: '8000', height: '8000' })).toEqual([
      ': resize to 8000×8000 makes 64,000,000 pixels, more than 50,000,000',
    ]);
    expect(query({ op: 'resize', width: '8000', height: '6250' })).toEqual([]);
  });

  it.each(OPERATIONS.filter((op) => op !== 'resize'))('when %s comes with a width or a height, then it is refused', (op) => {
    expect(query({ op, width: '10' })).toEqual([`: width goes with op=resize only, not with op=${op}`]);
    expect(query({ op, width: '10', height: '10' })).toEqual([`: width and height go with op=resize only, not with op=${op}`]);
    expect(query({ op })).toEqual([]);
  });

  it('when no op is given, then a width is refused too: the default operation takes none', () => {
    expect(query({ height: '10' })).toEqual([': height goes with op=resize only, not with op=swap-red-blue']);
  });

  it('when a task is created, then its parameters are held to the same rules', () => {
    const task = { id: '6f1c1d52-5e0e-4a6b-9a55-1b8f8a3e2c11', contentType: 'image/png' };
    expect(issues(CreateTaskBodySchema.safeParse({ ...task, op: 'resize', params: { width: 2 } }))).toEqual([]);
    expect(issues(CreateTaskBodySchema.safeParse({ ...task, op: 'resize' }))).toEqual([
      'params: op=resize needs width, height or both (in pixels)',
    ]);
    expect(issues(CreateTaskBodySchema.safeParse({ ...task, op: 'blur', params: { height: 2 } }))).toEqual([
      'params: height goes with op=resize only, not with op=blur',
    ]);
    expect(issues(CreateTaskBodySchema.safeParse({ ...task, op: 'resize', params: { width: '2' } }))).toEqual([
      `params.width: must be a whole number of pixels from 1 to ${MAX_RESIZE_SIDE}`,
    ]);
  });

  it("when a task or work comes without parameters (an older taskdb's answer, an operation without any), then it parses", () => {
    const task = {
      id: '6f1c1d52-5e0e-4a6b-9a55-1b8f8a3e2c11',
      op: 'invert',
      contentType: 'image/png',
      state: 'not_started',
      attempt: 0,
      error: null,
      owner: null,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      leaseExpiresAt: null,
      sourceBytes: 1,
      resultBytes: null,
      width: null,
      height: null,
    };
    expect(TaskSchema.parse(task).params).toBeNull();
    expect(TaskSchema.parse({ ...task, op: 'resize', params: { width: 3 } }).params).toEqual({ width: 3 });
    expect(WorkSchema.shape.params.parse(undefined)).toBeUndefined();
  });

  it('when the frontend documents its upload, then width and height are in the query and in the form, bounded', () => {
    expect(frontendContract.newImage.query.parse({ op: 'resize', width: '5' })).toEqual({ op: 'resize', width: 5 });
    expect(Object.keys(frontendContract.newImage.form.shape)).toEqual(['apiKey', 'op', 'width', 'height', 'image']);
  });

  it('when the operations are described, then resize says what it takes and its bound', () => {
    expect(OPERATION_DESCRIPTIONS.resize).toMatch(/width and\/or height/);
    expect(OPERATION_DESCRIPTIONS.resize).toContain(`${MAX_RESIZE_SIDE}`);
    expect(OPERATION_DESCRIPTIONS.resize).toMatch(/aspect ratio/);
  });
});

describe('resultDimensions', () => {
  const source = { width: 300, height: 200 };

  it.each<[Operation, { width: number; height: number }]>([
    ['swap-red-blue', source],
    ['grayscale', source],
    ['invert', source],
    ['sepia', source],
    ['flip', source],
    ['mirror', source],
    ['rotate-90', { width: 200, height: 300 }],
    ['rotate-180', source],
    ['rotate-270', { width: 200, height: 300 }],
    ['blur', source],
  ])('when %s is applied to 300×200, then the result is %o', (op, expected) => {
    expect(resultDimensions(op, null, source)).toEqual(expected);
    expect(resultDimensions(op, {}, source)).toEqual(expected);
  });

  it('when resize is given both sides, then the result has them, whatever the source', () => {
    expect(resultDimensions('resize', { width: 64, height: 10 }, source)).toEqual({ width: 64, height: 10 });
  });

  it('when resize is given one side, then the other keeps the aspect ratio, rounded', () => {
    expect(resultDimensions('resize', { width: 150 }, source)).toEqual({ width: 150, height: 100 });
    expect(resultDimensions('resize', { height: 50 }, source)).toEqual({ width: 75, height: 50 });
    // 200 × 100 / 300 = 66.67
    expect(resultDimensions('resize', { width: 100 }, source)).toEqual({ width: 100, height: 67 });
    // 3 × 1 / 2 = 1.5: rounded half up, as jimp rounds
    expect(resultDimensions('resize', { width: 1 }, { width: 2, height: 3 })).toEqual({ width: 1, height: 2 });
  });

  it('when the kept side would round to 0, then it is 1', () => {
    expect(resultDimensions('resize', { width: 10 }, { width: 5000, height: 1 })).toEqual({ width: 10, height: 1 });
    expect(resultDimensions('resize', { height: 1 }, { width: 1, height: 5000 })).toEqual({ width: 1, height: 1 });
  });
});

describe('resultSizeProblem', () => {
  it('when a kept side passes MAX_RESIZE_SIDE, then it says so with the sizes', () => {
    expect(resultSizeProblem('resize', { width: 8000 }, { width: 10, height: 100 })).toBe(
      `resize to width 8000 of an image of 10×100 pixels makes 8000×80000, more than ${MAX_RESIZE_SIDE} pixels a side`,
    );
  });

  it('when a kept side makes more than MAX_RESIZE_PIXELS, then it says so', () => {
    expect(resultSizeProblem('resize', { height: 8000 }, { width: 7, height: 8 })).toBe(
      'resize to height 8000 of an image of 7×8 pixels makes 7000×8000: 56,000,000 pixels, more than 50,000,000',
    );
  });

  it('when the result is within the bounds, or the operation makes no more pixels than its source, then there is none', () => {
    expect(resultSizeProblem('resize', { width: 800 }, { width: 1600, height: 1200 })).toBeUndefined();
    expect(resultSizeProblem('rotate-90', null, { width: 20_000, height: 1 })).toBeUndefined();
  });

  it('operationParamsProblem passes what a task may carry', () => {
    expect(operationParamsProblem('resize', { width: 1 })).toBeUndefined();
    expect(operationParamsProblem('invert', {})).toBeUndefined();
  });
});
