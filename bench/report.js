// The benchmark's table: each figure's median and range over the repetitions, with the
// issue's target where it has one.
'use strict';

/** A target is met when the median is on its side of the bound. */
function isMet(target, median) {
  return target.cmp === '>=' ? median >= target.value : median <= target.value;
}

const format = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : String(value));

/**
 * @param {Array<{id: string, label: string, unit: string, digits: number, target?: {cmp: '>=' | '<=', value: number}}>} rows
 * @param {Record<string, {median: number, min: number, max: number}>} figures
 * @returns {string[][]} cells of a table: measure, median, min–max, target, met?
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
      row.target ? `${row.target.cmp === '>=' ? '≥' : '≤'} ${row.target.value}${unit}` : '',
      row.target ? (isMet(row.target, figure.median) ? 'yes' : 'NO') : '',
    ];
  });
}

/** A Markdown table padded so it also reads well in a terminal. */
function markdownTable(header, cells) {
  const all = [header, ...cells];
  const width = header.map((_, c) => Math.max(...all.map((row) => [...row[c]].length)));
  const line = (row) => `| ${row.map((cell, c) => cell + ' '.repeat(width[c] - [...cell].length)).join(' | ')} |`;
  return [line(header), `| ${width.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

module.exports = { isMet, tableCells, markdownTable };
