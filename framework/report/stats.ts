/** Aggregation over seeds. std is the sample standard deviation (n - 1); null for a single value. */
export interface Stat {
  mean: number;
  std: number | null;
  n: number;
}

export function summarize(values: readonly number[]): Stat | null {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: null, n };
  const ss = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** Reads a dotted path ('train.batch_size') out of a nested config object. */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !(key in cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** True when every label parses as a finite number (so the axis can be an x-axis). */
export function isNumericAxis(labels: readonly string[]): boolean {
  return labels.length > 0 && labels.every((l) => l.trim() !== '' && Number.isFinite(Number(l)));
}
