import { OPERATIONS } from '@pixelmill/contracts';
import { applyOperation, OPERATION_REGISTRY, operationWorkingBytes } from '../../src/domain/operation-registry';

describe('the operation registry', () => {
  it('has an operation for every name of the contract, and no other', () => {
    expect(Object.keys(OPERATION_REGISTRY).sort()).toEqual([...OPERATIONS].sort());
    for (const op of OPERATIONS) expect(typeof OPERATION_REGISTRY[op].apply).toBe('function');
  });

  it('when an operation is applied, then the bitmap it returns is the result, however it changed size', () => {
    const wide = { data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), width: 2, height: 1 };
    expect(applyOperation('rotate-90', wide)).toMatchObject({ width: 1, height: 2 });
    const swapped = applyOperation('swap-red-blue', { data: Buffer.from([1, 2, 3, 4]), width: 1, height: 1 });
    expect([...swapped.data]).toEqual([3, 2, 1, 4]);
  });

  it('when every operation runs on an image, then its pixels keep their alphas (moved with them at most)', () => {
    const data = Buffer.alloc(5 * 3 * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i * 53) % 256;
    const alphas = (bytes: Buffer) => bytes.filter((_, i) => i % 4 === 3);
    for (const op of OPERATIONS.filter((name) => name !== 'resize')) {
      const result = applyOperation(op, { data: Buffer.from(data), width: 5, height: 3 });
      expect(result.width * result.height).toBe(15);
      expect([...alphas(result.data)].sort((a, b) => a - b)).toEqual([...alphas(data)].sort((a, b) => a - b));
    }
  });

  it('when an operation needs a second bitmap, then its working memory counts one', () => {
    const source = { width: 50, height: 20 };
    for (const op of ['rotate-90', 'rotate-180', 'rotate-270', 'flip', 'mirror'] as const) {
      expect(operationWorkingBytes(op, source)).toBeGreaterThanOrEqual(4000);
    }
    for (const op of ['swap-red-blue', 'grayscale', 'invert', 'sepia'] as const) expect(operationWorkingBytes(op, source)).toBe(0);
  });

  it("when an operation takes parameters, then they reach it, and its working memory is counted at the result's size", () => {
    const bitmap = { data: Buffer.alloc(4 * 3 * 4, 200), width: 4, height: 3 };
    expect(applyOperation('resize', bitmap, { width: 8 })).toMatchObject({ width: 8, height: 6 });
    const source = { width: 100, height: 100 };
    expect(operationWorkingBytes('resize', source, { width: 1000, height: 1000 })).toBeGreaterThan(1000 * 1000 * 4);
    expect(operationWorkingBytes('resize', source, { width: 10 })).toBeLessThan(100 * 100 * 4);
  });
});
