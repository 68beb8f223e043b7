import { UnendedTasks } from '../../src/domain/unended-tasks';

const idOf = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('the tasks created here that have not ended', () => {
  it('when a task is added, then it is known for its owner only (no owner is an owner of its own)', () => {
    const tasks = new UnendedTasks();
    tasks.add(idOf(1), 'owner-a');
    tasks.add(idOf(2), undefined);

    expect([tasks.has(idOf(1), 'owner-a'), tasks.has(idOf(1), 'owner-b'), tasks.has(idOf(1), undefined)]).toEqual([true, false, false]);
    expect([tasks.has(idOf(2), undefined), tasks.has(idOf(2), 'owner-a')]).toEqual([true, false]);
    expect(tasks.has(idOf(3), undefined)).toBe(false);
  });

  it('when a task ends, then it is not known any more; when news may have been lost, then none is', () => {
    const tasks = new UnendedTasks();
    for (const n of [1, 2, 3]) tasks.add(idOf(n), undefined);

    tasks.delete(idOf(2));
    expect([1, 2, 3].map((n) => tasks.has(idOf(n), undefined))).toEqual([true, false, true]);
    tasks.clear();
    expect(tasks.size).toBe(0);
  });

  it('when more tasks are added than it keeps, then the oldest are forgotten', () => {
    const tasks = new UnendedTasks(3);
    for (const n of [1, 2, 3, 4, 5]) tasks.add(idOf(n), undefined);

    expect(tasks.size).toBe(3);
    expect([1, 2, 3, 4, 5].map((n) => tasks.has(idOf(n), undefined))).toEqual([false, false, true, true, true]);
  });
});
