/** One sample of a Prometheus text answer: a series' name, its labels, its value. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What `GET /metrics` answered, parsed. */
export interface ScrapedMetrics {
  status: number;
  contentType: string | null;
  text: string;
  samples: MetricSample[];
  /** The value of the first series with this name whose labels include these; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over every series with this name whose labels include these. */
  sum(name: string, labels?: Record<string, string>): number;
}

const SAMPLE_LINE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** The samples of Prometheus's text format (comments and blank lines skipped). */
export function parseMetrics(text: string): MetricSample[] {
  return text.split('\n').flatMap((line) => {
    const match = SAMPLE_LINE.exec(line);
    if (match === null) return [];
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(LABEL)].map(([, key, value]) => [key!, JSON.parse(`"${value}"`) as string]),
    );
    return [{ name: match[1]!, labels, value: Number(match[3]) }];
  });
}

const includes = (labels: Record<string, string>, wanted: Record<string, string>): boolean =>
  Object.entries(wanted).every(([key, value]) => labels[key] === value);

/** Asks a server's `GET /metrics` (with the bearer token, when given) and parses the answer. */
export async function scrapeMetrics(baseUrl: string, token?: string): Promise<ScrapedMetrics> {
  const response = await fetch(`${baseUrl}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  const samples = response.ok ? parseMetrics(text) : [];
  const matching = (name: string, labels: Record<string, string>) =>
    samples.filter((sample) => sample.name === name && includes(sample.labels, labels));
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text,
    samples,
    value: (name, labels = {}) => matching(name, labels)[0]?.value,
    sum: (name, labels = {}) => matching(name, labels).reduce((total, sample) => total + sample.value, 0),
  };
}
