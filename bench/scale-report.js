// The tables of the scale benchmark, one per part, with the issue's targets checked on the
// figures they are about.
'use strict';
const { median, summarize } = require('./stats');
const { markdownTable, isMet } = require('./report');

/** 10³ for 1000, else the number with separators. */
function sizeLabel(n) {
  const exponent = Math.log10(n);
  if (!Number.isInteger(exponent)) return n.toLocaleString('en-US');
  return `10${[...String(exponent)].map((d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[Number(d)]).join('')}`;
}

/** Milliseconds with about three significant digits. */
const ms = (v) => (v === undefined || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const medianP99 = (figure) => (figure ? `${ms(figure.medianMs)} / ${ms(figure.p99Ms)} ms` : '–');
const ratioCell = (ratio) => (ratio === undefined ? '–' : ratio.toFixed(2));
const ratioOf = (a, b) => (a !== undefined && b !== undefined ? a / b : undefined);

/** The targets checked so far; `check` adds one where its figure was measured. */
class Targets {
  constructor() {
    this.list = [];
  }

  check(id, label, cmp, value, measured) {
    if (measured === undefined || !Number.isFinite(measured)) return undefined;
    const entry = { id, label, cmp, value, measured, met: isMet({ cmp, value }, measured) };
    this.list.push(entry);
    return entry;
  }
}

/** The "met?" cell of a target checked per backend: yes or NO, named by backend when there are several. */
function metCell(entryByBackend) {
  const entries = Object.entries(entryByBackend);
  const checked = entries.filter(([, entry]) => entry);
  if (checked.length === 0) return '';
  if (entries.length === 1) return checked[0][1].met ? 'yes' : 'NO';
  return checked.map(([name, entry]) => `${name} ${entry.met ? 'yes' : 'NO'}`).join(', ');
}

const TASKDB_CALLS = [
  ['claim', 'claim'],
  ['get', 'get'],
  ['changeState', 'change state'],
  ['listFirst', 'list by state, first page'],
  ['listDeep', 'list by state, deep page (cursor)'],
];

function taskdbSection(byEngine, plan, engines, targets) {
  const [smallest, largest] = [plan.sizes[0], plan.sizes[plan.sizes.length - 1]];
  const ratioLabel = `${sizeLabel(largest)} ÷ ${sizeLabel(smallest)}`;
  const cells = [];
  for (const engine of engines) {
    const bySize = byEngine[engine] ?? {};
    for (const [call, label] of TASKDB_CALLS) {
      const ratio = ratioOf(bySize[largest]?.ops[call].medianMs, bySize[smallest]?.ops[call].medianMs);
      const entry =
        largest > smallest
          ? targets.check(`taskdb.${engine}.${call}.ratio`, `taskdb ${engine} ${label}: median ${ratioLabel}`, '<=', 2, ratio)
          : undefined;
      cells.push([
        label,
        engine,
        ...plan.sizes.map((n) => medianP99(bySize[n]?.ops[call])),
        ratioCell(ratio),
        entry ? '≤ 2' : '',
        metCell({ [engine]: entry }),
      ]);
    }
    const seeding = plan.sizes.map((n) => (bySize[n] ? `${bySize[n].seedSeconds.toFixed(1)} s` : '–'));
    cells.push(['(seeding by SQL)', engine, ...seeding, '', '', '']);
  }
  return {
    title: `taskdb as the table grows: median / p99 of one call at a time (${plan.opSamples} of each), through its HTTP API`,
    table: markdownTable(['call', 'engine', ...plan.sizes.map(sizeLabel), ratioLabel, 'target', 'met?'], cells),
  };
}

function queueSection(byEngine, plan, engines, targets, pollPauseMs) {
  const rates = (engine, kind) => (byEngine[engine] ? summarize(byEngine[engine][kind].map((run) => run.perSecond)) : undefined);
  const rateCell = (figure) =>
    figure
      ? `${figure.median.toFixed(0)}/s${figure.min === figure.max ? '' : ` (${figure.min.toFixed(0)}–${figure.max.toFixed(0)})`}`
      : '–';
  const perTurnCell = (engine, field, digits, unit) =>
    byEngine[engine] ? `${median(byEngine[engine].cycles.map((run) => run[field])).toFixed(digits)}${unit}` : '–';
  const cycles = Object.fromEntries(engines.map((engine) => [engine, rates(engine, 'cycles')]));
  const pgOverSqlite = ratioOf(cycles.postgres?.median, cycles.sqlite?.median);
  const fast = targets.check(
    'queue.postgres.perSecond',
    'create → claim → finish on PostgreSQL, 16 clients',
    '>=',
    800,
    cycles.postgres?.median,
  );
  const noSlower = targets.check('queue.postgresOverSqlite', 'create → claim → finish, PostgreSQL ÷ SQLite', '>=', 1, pgOverSqlite);
  // The claimer of record waits on the events long poll; where the build has none, the polling one stands in.
  const modeOfRecord = (engine) => (byEngine[engine]?.createToClaim.events ? 'events' : 'poll');
  const wakeEntries = Object.fromEntries(
    engines.map((engine) => {
      const mode = modeOfRecord(engine);
      const figure = byEngine[engine]?.createToClaim[mode];
      return [
        engine,
        targets.check(`queue.${engine}.createToClaim.${mode}`, `create → claim median on ${engine} (${mode})`, '<=', 10, figure?.medianMs),
      ];
    }),
  );
  const wakeRow = (mode, label) => {
    const ofRecord = engines.filter((engine) => modeOfRecord(engine) === mode);
    const cell = (engine) => {
      const figure = byEngine[engine]?.createToClaim[mode];
      return figure === null ? 'no GET /events in this build' : medianP99(figure);
    };
    const met = metCell(Object.fromEntries(ofRecord.map((engine) => [engine, wakeEntries[engine]])));
    return [label, ...engines.map(cell), ofRecord.length > 0 ? '≤ 10 ms (median)' : '', met];
  };
  const row = (label, cellOf, target = '', met = '') => [label, ...engines.map(cellOf), target, met];
  const cells = [
    row(
      `create → claim → finish, ${plan.clients} clients`,
      (engine) => rateCell(cycles[engine]),
      'postgres ≥ 800/s',
      metCell({ postgres: fast }),
    ),
    row('  taskdb CPU per task', (engine) => perTurnCell(engine, 'taskdbCpuMsPerTurn', 2, ' ms')),
    row('  machine busy meanwhile (all processes)', (engine) => perTurnCell(engine, 'machineBusyPercent', 0, ' %')),
    row(
      '  PostgreSQL ÷ SQLite',
      (engine) => (engine === 'postgres' ? ratioCell(pgOverSqlite) : ''),
      '≥ 1',
      metCell({ postgres: noSlower }),
    ),
    row(`creates alone, ${plan.clients} clients`, (engine) => rateCell(rates(engine, 'creates'))),
    wakeRow('events', 'create → claim, the claimer long-polling GET /events (median / p99)'),
    wakeRow('poll', `create → claim, the claimer polling POST /claims, ${pollPauseMs} ms apart (median / p99)`),
  ];
  return {
    title:
      `The queue through taskdb's API: ${plan.throughputReps} run(s) of ${plan.throughputSeconds} s, median (min–max); ` +
      `create → claim one task at a time (${plan.latencySamples})`,
    table: markdownTable(['measure', ...engines, 'target', 'met?'], cells),
  };
}

function releaseSection(byEngine, plan, engines, targets) {
  const { backlog, released } = plan.release;
  const ratios = Object.fromEntries(
    engines.map((engine) => [engine, ratioOf(byEngine[engine]?.backlog?.claim.medianMs, byEngine[engine]?.baseline?.claim.medianMs)]),
  );
  const entries = Object.fromEntries(
    engines.map((engine) => [
      engine,
      targets.check(
        `release.${engine}.ratio`,
        `claim after a mass release on ${engine}: ${sizeLabel(backlog)} in backoff ÷ none`,
        '<=',
        2,
        ratios[engine],
      ),
    ]),
  );
  const row = (label, cellOf, target = '', met = '') => [label, ...engines.map(cellOf), target, met];
  const cells = [
    row(`release ${released} held tasks at once (${plan.clients} clients), total`, (e) =>
      byEngine[e]?.backlog ? `${ms(byEngine[e].backlog.releaseMs)} ms` : '–',
    ),
    row('claim, none in backoff (median / p99)', (e) => medianP99(byEngine[e]?.baseline?.claim)),
    row(`claim, ${sizeLabel(backlog)} older tasks in backoff (median / p99)`, (e) => medianP99(byEngine[e]?.backlog?.claim)),
    row('  ÷ none in backoff', (e) => ratioCell(ratios[e]), '≤ 2', metCell(entries)),
  ];
  return {
    title: `Claims after a mass release: ${released} tasks into backoff at once, then ${plan.opSamples} claims of newer ready tasks`,
    table: markdownTable(['measure', ...engines, 'target', 'met?'], cells),
  };
}

function storageSection(byStore, plan, stores, objectBytes) {
  const fillers = plan.storageFillers;
  const [few, many] = [fillers[0], fillers[fillers.length - 1]];
  const cells = [];
  for (const store of stores) {
    for (const filler of fillers)
      cells.push([store, sizeLabel(filler), medianP99(byStore[store]?.[filler]?.put), medianP99(byStore[store]?.[filler]?.get)]);
    const ratio = (call) => ratioCell(ratioOf(byStore[store]?.[many]?.[call].medianMs, byStore[store]?.[few]?.[call].medianMs));
    if (many > few) cells.push([`${store}: ${sizeLabel(many)} ÷ ${sizeLabel(few)}`, '', ratio('put'), ratio('get')]);
  }
  return {
    title: `storage: PUT and GET of a ${(objectBytes / 1000).toFixed(0)} KB PNG through its HTTP API, one at a time (${plan.storage.samples} of each), median / p99`,
    table: markdownTable(['store', 'objects stored', 'PUT', 'GET'], cells),
  };
}

function clusterSection(cluster) {
  const measured = cluster?.imagesPerSecond !== undefined;
  const label = measured
    ? `512×512 pipeline through the cluster (${cluster.images} images, ${cluster.clients} clients over ${cluster.frontends} frontends)`
    : '512×512 pipeline through the cluster';
  const cell = measured ? `${cluster.imagesPerSecond.toFixed(1)} img/s` : `skipped: ${cluster?.skipped ?? 'not run'}`;
  return { title: 'The cluster (scripts/cluster.js), for the record', table: markdownTable(['measure', 'value'], [[label, cell]]) };
}

/**
 * The tables of the parts that ran, and the targets checked on their figures.
 * @returns {{ sections: Array<{ title: string, table: string }>, targets: Array<object> }}
 */
function scaleReport(results, { plan, parts, engines, stores, pollPauseMs, objectBytes }) {
  const targets = new Targets();
  const sections = [];
  if (parts.has('taskdb')) sections.push(taskdbSection(results.taskdb, plan, engines, targets));
  if (parts.has('queue')) sections.push(queueSection(results.queue, plan, engines, targets, pollPauseMs));
  if (parts.has('release')) sections.push(releaseSection(results.release, plan, engines, targets));
  if (parts.has('storage')) sections.push(storageSection(results.storage, plan, stores, objectBytes));
  if (parts.has('cluster')) sections.push(clusterSection(results.cluster));
  return { sections, targets: targets.list };
}

module.exports = { scaleReport, sizeLabel, ms };
