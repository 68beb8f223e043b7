import { MemoryBudget, type MemoryGrant } from '../../src/loop/memory-budget';

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('memory budget', () => {
  const never = new AbortController().signal;

  it('when requests fit together, then they are granted at once', async () => {
    const budget = new MemoryBudget(100);
    const a = await budget.take(60, never);
    const b = await budget.take(40, never);
    expect([a?.bytes, b?.bytes]).toEqual([60, 40]);
    expect(budget.availableBytes).toBe(0);
  });

  it('when a request does not fit, then it waits until enough is given back', async () => {
    const budget = new MemoryBudget(100);
    const first = (await budget.take(70, never))!;
    let second: MemoryGrant | undefined;
    void budget.take(50, never).then((grant) => (second = grant));
    await settled();
    expect(second).toBeUndefined();
    expect(budget.waitingCount).toBe(1);

    first.release();
    first.release(); // a second release gives nothing back twice
    await settled();
    expect(second?.bytes).toBe(50);
    expect(budget.availableBytes).toBe(50);
  });

  it('when a large request waits, then smaller ones behind it wait too (first come, first served)', async () => {
    const budget = new MemoryBudget(100);
    const first = (await budget.take(60, never))!;
    const order: number[] = [];
    void budget.take(80, never).then((grant) => {
      order.push(80);
      grant?.release();
    });
    void budget.take(10, never).then(() => order.push(10));
    await settled();
    expect(order).toEqual([]);

    first.release();
    await settled();
    expect(order).toEqual([80, 10]);
  });

  it('when the signal aborts while a request waits, then it gets nothing and the ones behind it may go', async () => {
    const budget = new MemoryBudget(100);
    await budget.take(60, never);
    const controller = new AbortController();
    const waiting = budget.take(80, controller.signal);
    const behind = budget.take(30, never);

    controller.abort();

    await expect(waiting).resolves.toBeUndefined();
    await expect(behind).resolves.toMatchObject({ bytes: 30 });
  });

  it('when a request is larger than the whole budget, then it is refused rather than left waiting forever', async () => {
    await expect(new MemoryBudget(100).take(101, never)).rejects.toThrow(/can never fit/);
  });
});
