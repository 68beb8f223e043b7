import { parseMetrics } from '@pixelmill/kit/testing';
import type { TaskCounts } from '../../src/data-access/task-repository';
import { TaskdbMetrics } from '../../src/domain/taskdb-metrics';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const COUNTS: TaskCounts = { byState: { not_started: 3, in_progress: 2 }, oldestWaitingSince: NOW - 1_500 };

describe('TaskdbMetrics', () => {
  it('when scraped, then both gauges come from one read of the counts', async () => {
    const counts = jest.fn(async () => COUNTS);
    const metrics = new TaskdbMetrics({ counts, now: () => NOW });
    const samples = parseMetrics(await metrics.registry.metrics());
    expect(counts).toHaveBeenCalledTimes(1);
    expect(samples.filter((s) => s.name === 'pixelmill_tasks')).toEqual([
      { name: 'pixelmill_tasks', labels: { state: 'not_started' }, value: 3 },
      { name: 'pixelmill_tasks', labels: { state: 'in_progress' }, value: 2 },
    ]);
    expect(samples.find((s) => s.name === 'pixelmill_oldest_waiting_task_age_seconds')?.value).toBe(1.5);
    await metrics.registry.metrics();
    expect(counts).toHaveBeenCalledTimes(2);
  });

  it('when the database cannot be read, then the scrape still answers: no counts, and the wait unknown (NaN), not 0', async () => {
    const metrics = new TaskdbMetrics({ counts: async () => Promise.reject(new Error('down')), now: () => NOW });
    const samples = parseMetrics(await metrics.registry.metrics());
    expect(samples.filter((s) => s.name === 'pixelmill_tasks')).toEqual([]);
    expect(samples.find((s) => s.name === 'pixelmill_oldest_waiting_task_age_seconds')?.value).toBeNaN();
    expect(samples.filter((s) => s.name === 'pixelmill_lease_expiries_total')).toHaveLength(2);
  });
});
