// The benchmark's tables: each figure's median and range over the repetitions, with the issue's
// target and moonshot where it has them; and the plumbing's CPU beside its floor, per service.
'use strict';

const SIGNS = { '>=': '≥', '<=': '≤', '>': '>' };

/** A bound (a target or a moonshot) is met when the median is on its side of it. */
function isMet(bound, median) {
  if (bound.cmp === '>') return median > bound.value;
  return bound.cmp === '>=' ? median >= bound.value : median <= bound.value;
}

const format = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : String(value));

const describeBound = (bound, unit) => (bound ? `${SIGNS[bound.cmp]} ${bound.value}${unit}${bound.note ? ` (${bound.note})` : ''}` : '');
const verdict = (bound, median) => (bound ? (isMet(bound, median) ? 'yes' : 'NO') : '');

const TABLE_HEADER = ['measure', 'median', 'min–max', 'target', 'met?', 'moonshot', 'met?'];

/**
 * @param {Array<{id: string, label: string, unit: string, digits: number,
 *   target?: {cmp: '>=' | '<=' | '>', value: number, note?: string}, moonshot?: {cmp: '>=' | '<=' | '>', value: number}}>} rows
 * @param {Record<string, {median: number, min: number, max: number}>} figures
 * @returns {string[][]} cells of a table, as TABLE_HEADER
 */
function tableCells(rows, figures) {
  return rows.map((row) => {
    const figure = figures[row.id];
    const unit = row.unit ? ` ${row.unit}` : '';
    const range = figure.min === figure.max ? '–' : `${format(figure.min, row.digits)}–${format(figure.max, row.digits)}`;
    return [
      row.label,
      `${format(figure.median, row.digits)}${unit}`,
      range,
      describeBound(row.target, unit),
      verdict(row.target, figure.median),
      describeBound(row.moonshot, unit),
      verdict(row.moonshot, figure.median),
    ];
  });
}

const FLOOR_TABLE_HEADER = ['service', 'pipeline CPU/img', 'floor CPU/img', '÷ floor', 'floor on express + axios', '÷ that floor'];

/**
 * One row per service (`plumbing.<set>.<name>.cpuMsPerImage` beside `floor.<set>.<name>.cpuMsPerImage`
 * and `floorFramework.<set>.<name>.cpuMsPerImage`) and the total (`plumbing.<set>.ratioToFloor` and
 * `plumbing.<set>.ratioToFrameworkFloor`, the medians of each repetition's ratio).
 */
function floorCells(services, figures, set) {
  const ms = (id) => `${format(figures[id].median, 2)} ms`;
  const ratio = (value) => (Number.isFinite(value) ? `${value.toFixed(2)}` : '–');
  return [
    ...services.map((name) => {
      const pipeline = `plumbing.${set}.${name}.cpuMsPerImage`;
      const floor = `floor.${set}.${name}.cpuMsPerImage`;
      const framework = `floorFramework.${set}.${name}.cpuMsPerImage`;
      return [
        name,
        ms(pipeline),
        ms(floor),
        ratio(figures[pipeline].median / figures[floor].median),
        ms(framework),
        ratio(figures[pipeline].median / figures[framework].median),
      ];
    }),
    [
      'total',
      ms(`plumbing.${set}.cpuMsPerImage`),
      ms(`floor.${set}.cpuMsPerImage`),
      ratio(figures[`plumbing.${set}.ratioToFloor`].median),
      ms(`floorFramework.${set}.cpuMsPerImage`),
      ratio(figures[`plumbing.${set}.ratioToFrameworkFloor`].median),
    ],
  ];
}

/** A Markdown table padded so it also reads well in a terminal. */
function markdownTable(header, cells) {
  const all = [header, ...cells];
  const width = header.map((_, c) => Math.max(...all.map((row) => [...row[c]].length)));
  const line = (row) => `| ${row.map((cell, c) => cell + ' '.repeat(width[c] - [...cell].length)).join(' | ')} |`;
  return [line(header), `| ${width.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

module.exports = { TABLE_HEADER, FLOOR_TABLE_HEADER, isMet, tableCells, floorCells, markdownTable };
