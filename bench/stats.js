// Small statistics over repetitions: every figure of the benchmark is reported as the median
// and the range of its repetitions.
'use strict';

const sorted = (values) => [...values].sort((a, b) => a - b);

/** The middle value (the mean of the two middle ones for an even count). */
function median(values) {
  if (values.length === 0) return NaN;
  const s = sorted(values);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile, p in 0..100: the smallest value with at least p % of values at or below it. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = sorted(values);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

/** {median, min, max, values} of one figure's repetitions. */
function summarize(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

module.exports = { median, percentile, summarize };
