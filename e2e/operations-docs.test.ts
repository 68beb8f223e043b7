import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { AcceptedSchema, TaskStatusSchema } from '@pixelmill/contracts';
import { freePort, scrapeMetrics, waitUntilHealthy, type MetricSample } from '@pixelmill/kit/testing';
import { encode, makeBitmap } from './images';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

// docs/operations.md, its alert rules and its Grafana dashboard name metrics and labels: this test
// holds them to what the built services serve. A rule or a panel that asks for a metric nobody
// serves stays silent or empty forever, and nothing else would tell.

const DOCS = path.resolve(__dirname, '..', 'docs');
const read = (file: string) => fs.readFileSync(path.join(DOCS, file), 'utf8');

/** Series the documented setup has that no pixelmill service serves: Prometheus's own, and the blackbox exporter's. */
const EXTERNAL_SERIES = new Set(['up', 'probe_success']);
/** Labels the scrape configuration of docs/operations.md puts on every target. */
const TARGET_LABELS = ['job', 'instance', 'service'];
/** PromQL words that look like names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** The names a metric family of this type is served under: a histogram's buckets, sum and count. */
function seriesNames(name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

interface Selector {
  metric: string;
  /** Label names of its matchers (`{state="not_started"}` → state). */
  labels: string[];
}

/**
 * What a PromQL expression reads: each metric (with the labels its matchers name) and the labels its
 * `by`, `without`, `on` and `ignoring` clauses name. Enough for the expressions of these docs (no
 * strings outside matchers, no `__name__` matching), not a PromQL parser.
 */
function readsOf(expr: string): { selectors: Selector[]; grouping: string[] } {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  let rest = expr
    .replaceAll('$__rate_interval', '5m')
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, _word, labels: string) => {
      grouping.push(
        ...labels
          .split(',')
          .map((label) => label.trim())
          .filter(Boolean),
      );
      return ' ';
    });
  rest = rest.replace(/([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}/g, (_all, metric: string | undefined, matchers: string) => {
    const labels = [...matchers.matchAll(/(\w+)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map((match) => match[1]!);
    if (metric !== undefined) selectors.push({ metric, labels });
    return ' ';
  });
  // A whole name (not the start of a longer one) that no parenthesis follows: not a function.
  for (const match of rest.matchAll(/(?<![\w.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    if (!KEYWORDS.has(match[1]!)) selectors.push({ metric: match[1]!, labels: [] });
  }
  return { selectors, grouping };
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ refId: string; expr: string; datasource?: { uid: string } }>;
}

describe('the operations docs against the services', () => {
  let dir: string;
  let stack: Awaited<ReturnType<typeof startStack>>;
  /** Every series name the services serve (a histogram's `_bucket`, `_sum` and `_count`), and the services serving it. */
  const served = new Map<string, Set<string>>();
  /** Label names seen on each series name's samples. */
  const labelsOf = new Map<string, Set<string>>();

  const serve = (service: string, text: string, samples: MetricSample[]) => {
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      for (const series of seriesNames(name!, type!)) served.set(series, new Set([...(served.get(series) ?? []), service]));
    }
    for (const sample of samples) {
      const labels = labelsOf.get(sample.name) ?? new Set<string>();
      for (const label of Object.keys(sample.labels)) labels.add(label);
      labelsOf.set(sample.name, labels);
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-ops-docs-'));
    const workerMetricsPort = await freePort();
    stack = await startStack({
      dataDir: path.join(dir, 'data'),
      logDir: path.join(dir, 'logs'),
      freePorts: true,
      envFor: { worker: { METRICS_PORT: String(workerMetricsPort) } },
    });
    const worker = `http://127.0.0.1:${workerMetricsPort}`;
    await waitUntilHealthy(worker);

    // One image through the stack, so that the labelled series (transform time by op and format,
    // requests by route) have samples whose labels can be checked.
    const form = new FormData();
    form.append('image', new Blob([await encode('image/png', makeBitmap(16, 8, { alpha: true }))]), 'picture.png');
    const upload = await fetch(`${stack.urls.frontend}/newImage`, { method: 'POST', body: form, headers: { accept: 'application/json' } });
    const { id } = AcceptedSchema.parse(await upload.json());
    const status = await fetch(`${stack.urls.frontend}/image/isReady?id=${id}&waitMs=30000`);
    expect(TaskStatusSchema.parse(await status.json()).state).toBe('finished');

    for (const server of stack.servers) {
      const metrics = await scrapeMetrics(server.url, stack.tokens!.internal);
      expect({ service: server.service, status: metrics.status }).toEqual({ service: server.service, status: 200 });
      serve(server.service, metrics.text, metrics.samples);
    }
    // The worker holds no INTERNAL_TOKEN, and is scraped without it (docs/operations.md says why).
    const metrics = await scrapeMetrics(worker);
    expect(metrics.status).toBe(200);
    serve('worker', metrics.text, metrics.samples);
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What is wrong with the metrics and labels an expression reads, one line each. */
  const problemsOf = (where: string, expr: string): string[] => {
    const { selectors, grouping } = readsOf(expr);
    const problems: string[] = [];
    const known = new Set(TARGET_LABELS);
    for (const { metric, labels } of selectors) {
      if (EXTERNAL_SERIES.has(metric)) {
        for (const label of labels) known.add(label);
        continue;
      }
      if (!served.has(metric)) {
        problems.push(`${where}: no service serves ${metric}`);
        continue;
      }
      const own = labelsOf.get(metric) ?? new Set<string>();
      for (const label of own) known.add(label);
      for (const label of labels.filter((name) => !own.has(name) && !TARGET_LABELS.includes(name))) {
        problems.push(`${where}: ${metric} has no label ${label}`);
      }
    }
    for (const label of grouping.filter((name) => !known.has(name))) problems.push(`${where}: no metric it reads has the label ${label}`);
    return problems;
  };

  it('when the PromQL reader is given an expression, then it finds its metrics and labels, and nothing else', () => {
    // The test's own tool, checked once: a reader that found nothing would let any docs pass.
    expect(
      readsOf(
        'histogram_quantile(0.95, sum by (le, op) (rate(pixelmill_worker_transform_seconds_bucket{format=~"png|gif"}[$__rate_interval]))) ' +
          '> 1 and on() max(pixelmill_tasks{state="not_started"}) > 0 or up == 0',
      ),
    ).toEqual({
      selectors: [
        { metric: 'pixelmill_worker_transform_seconds_bucket', labels: ['format'] },
        { metric: 'pixelmill_tasks', labels: ['state'] },
        { metric: 'up', labels: [] },
      ],
      grouping: ['le', 'op'],
    });
    expect(problemsOf('a made-up rule', 'sum by (operation) (rate(pixelmill_worker_tasks_done_total{reson="image"}[5m]))')).toEqual([
      'a made-up rule: no service serves pixelmill_worker_tasks_done_total',
      'a made-up rule: no metric it reads has the label operation',
    ]);
    expect(problemsOf('another', 'sum(pixelmill_tasks{status="not_started"})')).toEqual(['another: pixelmill_tasks has no label status']);
  });

  describe('docs/prometheus-alerts.yml', () => {
    const document = YAML.parse(read('prometheus-alerts.yml')) as { groups: Array<{ name: string; rules: Rule[] }> };
    const rules = document.groups.flatMap((group) => group.rules);

    it('when loaded, then it is groups of alerting rules, each with its expression, duration, severity and text', () => {
      expect(Object.keys(document)).toEqual(['groups']);
      expect(document.groups.length).toBeGreaterThan(0);
      expect(new Set(document.groups.map((group) => group.name)).size).toBe(document.groups.length);
      for (const group of document.groups) {
        expect({ group: group.name, rules: Array.isArray(group.rules) && group.rules.length > 0 }).toEqual({
          group: group.name,
          rules: true,
        });
      }
      for (const rule of rules) {
        expect({
          alert: rule.alert,
          keys: Object.keys(rule).sort(),
          expr: typeof rule.expr === 'string' && rule.expr.trim().length > 0,
          for: rule.for,
          severity: rule.labels.severity,
          summary: typeof rule.annotations.summary === 'string' && rule.annotations.summary.length > 0,
          description: typeof rule.annotations.description === 'string' && rule.annotations.description.length > 0,
        }).toEqual({
          alert: expect.stringMatching(/^Pixelmill[A-Z][A-Za-z]+$/),
          keys: ['alert', 'annotations', 'expr', 'for', 'labels'],
          expr: true,
          for: expect.stringMatching(/^\d+[smhd]$/),
          severity: expect.stringMatching(/^(warning|critical)$/),
          summary: true,
          description: true,
        });
      }
      expect(new Set(rules.map((rule) => rule.alert)).size).toBe(rules.length);
    });

    it('when an alert reads a metric or a label, then a service serves it', () => {
      expect(rules.flatMap((rule) => problemsOf(rule.alert, rule.expr))).toEqual([]);
    });

    it('when the scrape configuration of the docs names jobs, then the alerts ask for those jobs', () => {
      const jobs = [...read('operations.md').matchAll(/job_name: (\S+)/g)].map((match) => match[1]);
      const asked = rules.flatMap((rule) => [...rule.expr.matchAll(/job(?:=~|=)"([^"]+)"/g)].flatMap((match) => match[1]!.split('|')));
      expect(asked.length).toBeGreaterThan(0);
      expect(asked.filter((job) => !jobs.includes(job))).toEqual([]);
    });
  });

  describe('docs/grafana-dashboard.json', () => {
    const dashboard = JSON.parse(read('grafana-dashboard.json')) as {
      title: string;
      uid: string;
      panels: Panel[];
      templating: { list: Array<{ name: string; type: string; query: string }> };
    };
    const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');

    it('when imported, then it has a title, a Prometheus data source to choose, and panels that each query it', () => {
      expect(dashboard.title).toBe('pixelmill');
      expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
      expect(dashboard.templating.list).toContainEqual(
        expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
      );
      expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
      expect(graphs.length).toBeGreaterThan(0);
      for (const panel of graphs) {
        expect({
          title: panel.title,
          datasource: panel.datasource,
          refIds: new Set(panel.targets?.map((target) => target.refId)).size === panel.targets?.length,
          targets: (panel.targets?.length ?? 0) > 0 && panel.targets!.every((target) => target.expr.trim().length > 0),
          fits: panel.gridPos.x >= 0 && panel.gridPos.w > 0 && panel.gridPos.x + panel.gridPos.w <= 24,
        }).toEqual({
          title: panel.title,
          datasource: { type: 'prometheus', uid: '${datasource}' },
          refIds: true,
          targets: true,
          fits: true,
        });
      }
    });

    it('when a panel reads a metric or a label, then a service serves it', () => {
      expect(
        graphs.flatMap((panel) => panel.targets!.flatMap((target) => problemsOf(`"${panel.title}" ${target.refId}`, target.expr))),
      ).toEqual([]);
    });
  });

  describe('docs/operations.md', () => {
    const text = read('operations.md');
    const named = new Set([...text.matchAll(/\bpixelmill_[a-z0-9_]+/g)].map((match) => match[0]));

    it('when it names a pixelmill metric, then a service serves it', () => {
      expect([...named].filter((name) => !served.has(name) && !served.has(`${name}_bucket`))).toEqual([]);
    });

    it('when a service serves a pixelmill metric, then the docs name it', () => {
      const families = [...served.keys()].filter((name) => name.startsWith('pixelmill_') && !/_(bucket|sum|count)$/.test(name));
      const histograms = [...served.keys()]
        .filter((name) => name.startsWith('pixelmill_') && name.endsWith('_bucket'))
        .map((name) => name.slice(0, -'_bucket'.length));
      expect([...families, ...histograms].filter((name) => !named.has(name))).toEqual([]);
    });

    it('when the worker serves its metrics, then they are the ones the worker section names, with its labels', () => {
      expect(
        [...served].filter(([name]) => name.startsWith('pixelmill_worker_')).every(([, services]) => [...services].join() === 'worker'),
      ).toBe(true);
      expect(labelsOf.get('pixelmill_worker_transform_seconds_bucket')).toEqual(new Set(['op', 'format', 'le']));
      expect(labelsOf.get('pixelmill_worker_tasks_failed_total')).toEqual(new Set(['reason']));
    });
  });
});
