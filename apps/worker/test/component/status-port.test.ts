import path from 'node:path';
import { PNG } from 'pngjs';
import { ReadySchema, type ImageType, type Operation } from '@pixelmill/contracts';
import { createLogger, parseConfig, Registry } from '@pixelmill/kit';
import { scrapeMetrics } from '@pixelmill/kit/testing';
import { WorkerConfigSchema } from '../../src/config';
import { startWorker, type Worker } from '../../src/worker';
import { FakeMaster, FakeStorage } from './fake-services';

// The worker's metrics and health port (METRICS_PORT), against the same fake master and storage as
// the loop's tests: what a scrape shows after real tasks, what /readyz makes of master, the token,
// and that the port is there only when asked for and only while the worker runs.

/** Its threads hang on a 'grayscale' task (and die on an 'invert' one): a transform that holds its thread. */
const HANGING_THREADS = path.join(__dirname, '..', 'fixtures', 'misbehaving-transform-thread.js');

const METRICS_TOKEN = 'metrics-token-of-the-tests-0123456789';
const WORKER_TOKEN = 'worker-token-of-the-tests-0123456789';

/** A small PNG with transparency. */
function png(): Buffer {
  const image = new PNG({ width: 4, height: 3 });
  for (let i = 0; i < image.data.length; i += 4) image.data.set([200, 50 + i, 10, 128], i);
  return PNG.sync.write(image, { colorType: 6 });
}

/** Waits for what the test expects; the deadline only bounds a test that would hang, on however busy a machine. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A gate the test opens: storage holds its answers until then. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Servers listening in this process at this moment. */
const listeningServers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length;

const readiness = async (url: string) => {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: ReadySchema.parse(await response.json()) };
};

describe('worker metrics and health port', () => {
  let master: FakeMaster;
  let storage: FakeStorage;
  let worker: Worker | undefined;

  beforeEach(async () => {
    storage = new FakeStorage();
    master = new FakeMaster(storage);
    await Promise.all([master.start(), storage.start()]);
  });

  afterEach(async () => {
    await worker?.stop(5_000);
    worker = undefined;
    await Promise.all([master.close(), storage.close()]);
  });

  const start = async (env: Record<string, string> = {}, threadScript?: string): Promise<Worker> => {
    const config = parseConfig(WorkerConfigSchema, {
      MASTER_URL: master.url,
      // Nothing listens here: the override and the signed URLs must be enough.
      KV_URL: 'http://127.0.0.1:9',
      POLL_WAIT_MS: '50',
      ERROR_BACKOFF_MS: '20',
      ERROR_BACKOFF_MAX_MS: '100',
      WORKER_CONCURRENCY: '1',
      METRICS_PORT: '0',
      ...env,
    });
    worker = await startWorker(config, {
      logger: createLogger('worker', 'silent'),
      tuning: { minPollIntervalMs: 10, minHeartbeatMs: 20 },
      threadScript,
    });
    return worker;
  };

  const queue = (bytes: Buffer, contentType: ImageType, op?: Operation): string => {
    const id = master.enqueue({ contentType, op });
    storage.put('inProgress', id, bytes, contentType);
    return id;
  };

  const scrape = (running: Worker) => scrapeMetrics(running.statusUrl!);

  it('when a task is done, then /metrics shows it finished and its transform time by operation and format, with the process figures', async () => {
    const id = queue(png(), 'image/png', 'invert');
    const running = await start();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const metrics = await scrape(running);

    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toBe(new Registry().contentType);
    expect(metrics.value('pixelmill_worker_tasks_finished_total')).toBe(1);
    expect(metrics.value('pixelmill_worker_transform_seconds_count', { op: 'invert', format: 'png' })).toBe(1);
    expect(metrics.value('pixelmill_worker_transform_seconds_sum', { op: 'invert', format: 'png' })).toBeGreaterThan(0);
    expect(metrics.sum('pixelmill_worker_tasks_failed_total')).toBe(0);
    expect(metrics.value('pixelmill_worker_tasks_released_total')).toBe(0);
    expect(metrics.value('pixelmill_worker_tasks_abandoned_total')).toBe(0);
    expect(metrics.value('pixelmill_worker_threads')).toBe(1);
    expect(metrics.value('pixelmill_worker_threads_busy')).toBe(0);
    // kit's process metrics, as on every server.
    expect(metrics.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(metrics.value('nodejs_eventloop_lag_seconds')).toBeDefined();
  });

  it('when an image does not decode, then the task counts as failed of an image reason, not finished', async () => {
    const id = queue(Buffer.from('\x89PNG\r\n\x1a\n and nothing after the signature', 'latin1'), 'image/png');
    const running = await start();
    await until(() => master.tasks.get(id)!.state === 'failed', 'the task to fail');

    const metrics = await scrape(running);

    expect(metrics.value('pixelmill_worker_tasks_failed_total', { reason: 'image' })).toBe(1);
    for (const reason of ['timeout', 'memory', 'other']) expect(metrics.value('pixelmill_worker_tasks_failed_total', { reason })).toBe(0);
    expect(metrics.value('pixelmill_worker_tasks_finished_total')).toBe(0);
  });

  it('when an upload fails for a passing reason, then the task counts as released once, then finished', async () => {
    storage.failingPuts.push(500);
    const id = queue(png(), 'image/png');
    const running = await start();
    await until(() => master.tasks.get(id)!.state === 'finished', 'the task to finish');

    const metrics = await scrape(running);

    expect(metrics.value('pixelmill_worker_tasks_released_total')).toBe(1);
    expect(metrics.value('pixelmill_worker_tasks_finished_total')).toBe(1);
    // Transformed twice: once per attempt.
    expect(metrics.value('pixelmill_worker_transform_seconds_count', { op: 'swap-red-blue', format: 'png' })).toBe(2);
  });

  it('when the lease of the task in hand is lost, then the task counts as abandoned', async () => {
    const held = gate();
    storage.gate = held.promise;
    master.leaseMs = 300;
    const id = queue(png(), 'image/png');
    const running = await start();
    await until(() => storage.callsTo('get').length === 1, 'the download to start');
    master.revokeLease(id);
    await until(() => master.callsTo('heartbeat').length >= 1, 'a refused heartbeat');
    held.open();

    await until(async () => (await scrape(running)).value('pixelmill_worker_tasks_abandoned_total') === 1, 'the task to be abandoned');
    const metrics = await scrape(running);
    expect(metrics.value('pixelmill_worker_tasks_finished_total')).toBe(0);
    expect(metrics.value('pixelmill_worker_tasks_released_total')).toBe(0);
  });

  it('when a transform holds its thread, then the busy gauge counts it', async () => {
    queue(png(), 'image/png', 'grayscale');
    const running = await start({}, HANGING_THREADS);

    await until(async () => (await scrape(running)).value('pixelmill_worker_threads_busy') === 1, 'the thread to be busy');
    expect((await scrape(running)).value('pixelmill_worker_threads')).toBe(1);
    await running.stop(0);
  });

  it('when a transform outlasts TRANSFORM_TIMEOUT_MS, then the task counts as failed of a timeout', async () => {
    const id = queue(png(), 'image/png', 'grayscale');
    const running = await start({ TRANSFORM_TIMEOUT_MS: '200' }, HANGING_THREADS);
    await until(() => master.tasks.get(id)!.state === 'failed', 'the task to fail');

    const metrics = await scrape(running);

    expect(metrics.value('pixelmill_worker_tasks_failed_total', { reason: 'timeout' })).toBe(1);
    expect(metrics.sum('pixelmill_worker_tasks_failed_total')).toBe(1);
  });

  it('when asked, then /healthz answers 200 for the worker', async () => {
    const running = await start();

    const response = await fetch(`${running.statusUrl}/healthz`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', service: 'worker' });
  });

  it('when master answers, then /readyz is 200, master and claiming ok, even while a long poll is still held', async () => {
    // The fake master holds an empty poll for the whole waitMs: no call has ended when /readyz is asked.
    const running = await start({ POLL_WAIT_MS: '10000' });
    await until(() => master.callsTo('getWork').length === 1, 'the long poll');

    expect(await readiness(running.statusUrl!)).toEqual({
      status: 200,
      body: { status: 'ready', service: 'worker', checks: { master: 'ok', claiming: 'ok' } },
    });
  });

  it('when master refuses the worker (a wrong WORKER_TOKEN), then /readyz is 503 with master failing, though master is up', async () => {
    master.requireToken(WORKER_TOKEN);
    const running = await start({ WORKER_TOKEN: 'another-worker-token-0123456789' });
    await until(() => master.requests.some((request) => request.path === '/getWork'), 'a refused poll');

    await until(async () => (await readiness(running.statusUrl!)).status === 503, '/readyz to say not ready');
    expect((await readiness(running.statusUrl!)).body.checks).toEqual({ master: 'failing', claiming: 'ok' });
    expect((await fetch(`${master.url}/healthz`)).status).toBe(200);
  });

  it('when master cannot be reached, then /readyz is 503 with master failing', async () => {
    const running = await start({ MASTER_URL: 'http://127.0.0.1:9' });

    const { status, body } = await readiness(running.statusUrl!);

    expect(status).toBe(503);
    expect(body.checks).toEqual({ master: 'failing', claiming: 'ok' });
  });

  it('when the worker is stopping with a task in hand, then the port still answers and /readyz says it no longer claims', async () => {
    const held = gate();
    storage.gate = held.promise;
    const id = queue(png(), 'image/png');
    const running = await start();
    await until(() => storage.callsTo('get').length === 1, 'the download to start');

    const stopping = running.stop(10_000);
    const { status, body } = await readiness(running.statusUrl!);
    held.open();
    await stopping;

    expect(status).toBe(503);
    expect(body.checks.claiming).toBe('failing');
    expect(master.tasks.get(id)!.state).toBe('finished');
  });

  it('when the worker has stopped, then its port is closed', async () => {
    const running = await start();
    const url = running.statusUrl!;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    await running.stop(5_000);

    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('when METRICS_PORT is unset, then the worker opens no port', async () => {
    const before = listeningServers();

    const running = await start({ METRICS_PORT: '' });

    expect(running.statusUrl).toBeUndefined();
    expect(listeningServers()).toBe(before);
  });

  it('when METRICS_PORT is set, then the worker listens on loopback, on one more server', async () => {
    const before = listeningServers();

    const running = await start();

    expect(new URL(running.statusUrl!).hostname).toBe('127.0.0.1');
    expect(listeningServers()).toBe(before + 1);
  });

  it('when METRICS_PORT is taken, then the worker does not start, and says why', async () => {
    const taken = new URL(master.url).port;

    await expect(start({ METRICS_PORT: taken })).rejects.toThrow(/EADDRINUSE/);
    expect(worker).toBeUndefined();
  });

  describe('with METRICS_TOKEN', () => {
    it('when /metrics is asked without the token or with another, then it answers 401 naming METRICS_TOKEN; with it, 200', async () => {
      const running = await start({ METRICS_TOKEN });

      const without = await fetch(`${running.statusUrl}/metrics`);
      expect(without.status).toBe(401);
      expect(await without.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringContaining('<METRICS_TOKEN>') } });
      expect((await scrapeMetrics(running.statusUrl!, 'not-the-metrics-token-0123')).status).toBe(401);
      const scraped = await scrapeMetrics(running.statusUrl!, METRICS_TOKEN);
      expect(scraped.status).toBe(200);
      expect(scraped.value('pixelmill_worker_threads')).toBe(1);
    });

    it('when /healthz and /readyz are asked without a token, then they answer, as on every server', async () => {
      const running = await start({ METRICS_TOKEN });

      expect((await fetch(`${running.statusUrl}/healthz`)).status).toBe(200);
      expect((await readiness(running.statusUrl!)).body.service).toBe('worker');
    });
  });
});
