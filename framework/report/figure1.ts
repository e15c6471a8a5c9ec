/**
 * The paper's Figure 1 from our own evaluation points: zero-shot top-1 against wall-clock training time, one curve
 * per cell (mask ratio, with its batch), one panel per block of the table (e.g. budget = epochs / time).
 *
 * Seeds of a cell do not evaluate at the same seconds, so averaging them step by step would mix times. Each seed's
 * curve is read as a piecewise-linear function of time and the seeds are averaged on a common time axis: the union
 * of their evaluation times inside the span every seed covers (from the latest first evaluation to the earliest
 * last one), so every point of the mean is over all n seeds and no seed is extrapolated.
 */
import { axisLabels, cellKey, describeLabels, type Layout } from './axes.js';
import type { Curve, ExperimentData, JobData } from './load.js';
import { summarize } from './stats.js';

export const FIGURE1_METRIC = 'zero_shot_top1';
const MAX_POINTS = 300;

export interface TimeCurve {
  /** The cell's labels (rows axis, companions, columns axis); group labels are the panel's. */
  labels: Record<string, string>;
  name: string;
  /** Finished seeds with an evaluation curve that has elapsed times. */
  n: number;
  /** Seconds of training, ascending. */
  time: number[];
  /** Zero-shot top-1 in %, mean over the n seeds at each time. */
  mean: number[];
  /** Sample std over the seeds at each time; null when n = 1. */
  std: (number | null)[];
}

export interface Figure1Panel {
  group: Record<string, string>;
  title: string;
  curves: TimeCurve[];
}

/** (time, value %) points of one job's curve with a known elapsed time, time ascending. */
function seedPoints(curve: Curve): { t: number; v: number }[] {
  const pts: { t: number; v: number }[] = [];
  for (let i = 0; i < curve.step.length; i++) {
    const t = curve.elapsed[i];
    if (t === null || t === undefined || !Number.isFinite(t)) continue;
    pts.push({ t, v: curve.value[i]! * 100 });
  }
  return pts.sort((a, b) => a.t - b.t);
}

/** Linear interpolation of a time-ascending curve at t (inside its span). */
export function valueAt(pts: readonly { t: number; v: number }[], t: number): number {
  let hi = pts.findIndex((p) => p.t >= t);
  if (hi < 0) hi = pts.length - 1;
  if (hi === 0 || pts[hi]!.t === t) return pts[hi]!.v;
  const a = pts[hi - 1]!, b = pts[hi]!;
  return a.v + ((b.v - a.v) * (t - a.t)) / (b.t - a.t);
}

function thinTimes(times: number[]): number[] {
  if (times.length <= MAX_POINTS) return times;
  const stride = Math.ceil(times.length / MAX_POINTS);
  return times.filter((_, i) => i % stride === 0 || i === times.length - 1);
}

/** Mean ± std of the seeds' curves on their common time axis; null when no seed has a timed curve. */
export function meanOverSeeds(jobs: readonly JobData[]): Omit<TimeCurve, 'labels' | 'name'> | null {
  const seeds = jobs.flatMap((j) => {
    const c = j.status === 'done' ? j.curves.get(FIGURE1_METRIC) : undefined;
    const pts = c ? seedPoints(c) : [];
    return pts.length ? [pts] : [];
  });
  if (seeds.length === 0) return null;
  const from = Math.max(...seeds.map((s) => s[0]!.t));
  const to = Math.min(...seeds.map((s) => s[s.length - 1]!.t));
  if (from > to) return null;
  const times = thinTimes([...new Set(seeds.flatMap((s) => s.map((p) => p.t)).filter((t) => t >= from && t <= to))].sort((a, b) => a - b));
  const mean: number[] = [];
  const std: (number | null)[] = [];
  for (const t of times) {
    const stat = summarize(seeds.map((s) => valueAt(s, t)))!;
    mean.push(stat.mean);
    std.push(stat.std);
  }
  return { n: seeds.length, time: times, mean, std };
}

export function figure1Panels(data: ExperimentData, layout: Layout): Figure1Panel[] {
  const lineAxes = layout.cellAxes.filter((a) => !layout.groupAxes.includes(a));
  const panels = new Map<string, { group: Record<string, string>; cells: Map<string, { labels: Record<string, string>; jobs: JobData[] }> }>();
  for (const job of data.jobs) {
    const group = Object.fromEntries(layout.groupAxes.map((a) => [a, job.labels[a] ?? '']));
    const gKey = JSON.stringify(layout.groupAxes.map((a) => group[a]));
    const panel = panels.get(gKey) ?? { group, cells: new Map() };
    panels.set(gKey, panel);
    const key = cellKey(layout, job.labels);
    const cell = panel.cells.get(key) ?? { labels: Object.fromEntries(lineAxes.flatMap((a) => (job.labels[a] === undefined ? [] : [[a, job.labels[a]!]]))), jobs: [] };
    panel.cells.set(key, cell);
    cell.jobs.push(job);
  }
  const rank = (axes: readonly string[], labels: Record<string, string>): number[] => axes.map((a) => axisLabels(layout, a).indexOf(labels[a] ?? ''));
  const byRank = (axes: readonly string[]) => (x: Record<string, string>, y: Record<string, string>): number => {
    const rx = rank(axes, x), ry = rank(axes, y);
    for (let i = 0; i < rx.length; i++) if (rx[i] !== ry[i]) return rx[i]! - ry[i]!;
    return 0;
  };
  return [...panels.values()]
    .sort((p, q) => byRank(layout.groupAxes)(p.group, q.group))
    .map((p) => ({
      group: p.group,
      title: describeLabels(p.group),
      curves: [...p.cells.values()]
        .sort((a, b) => byRank(lineAxes)(a.labels, b.labels))
        .flatMap((c) => {
          const m = meanOverSeeds(c.jobs);
          return m ? [{ labels: c.labels, name: describeLabels(c.labels) || data.row.name, ...m }] : [];
        }),
    }))
    .filter((p) => p.curves.length > 0);
}

/** figure1.csv: every point of every mean curve, long format. */
export function figure1Csv(panels: readonly Figure1Panel[], groupAxes: readonly string[]): string {
  const esc = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [[...groupAxes, 'curve', 'seeds', 'time_s', 'zero_shot_top1_mean_pct', 'zero_shot_top1_std_pct'].map(esc).join(',')];
  for (const p of panels) {
    for (const c of p.curves) {
      c.time.forEach((t, i) => {
        lines.push([...groupAxes.map((a) => esc(p.group[a] ?? '')), esc(c.name), c.n, t, c.mean[i], c.std[i] ?? ''].join(','));
      });
    }
  }
  return lines.join('\n') + '\n';
}
