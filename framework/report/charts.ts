/**
 * The plots of an experiment page, as PNG files beside it:
 *   accuracy-vs-time   zero-shot top-1 against wall-clock seconds per cell (the paper's Figure 1)
 *   loss, accuracy-vs-step   training loss / zero-shot top-1 against step per cell
 *   <metric>-vs-<axis>  each result metric against a numeric rows/columns axis (mean line, seeds as dots)
 *   accuracy-vs-flops   when an axis scales model, data or budget
 *   jobs/job-<id>       loss and accuracy of single jobs, for the first MAX_JOB_CHARTS jobs only
 * Aggregate curves average the seeds of a cell step by step, over finished ('done') jobs.
 */
import type { ChartConfiguration, ChartDataset } from 'chart.js';
import { axisLabels, cellKey, type Layout } from './axes.js';
import { color, renderChart } from './chart-render.js';
import { isFractionMetric, prettyMetric, toDisplay, unitOf } from './columns.js';
import type { ExperimentData, JobData } from './load.js';
import { isNumericAxis, summarize } from './stats.js';

export const MAX_JOB_CHARTS = 12;
const MAX_LINES = 20;
const MAX_POINTS = 300;
export const SCALING_AXES = ['model.preset', 'data.train_size', 'train.steps', 'train.samples', 'train.epochs', 'train.time_budget_s', 'scale'];

export interface ChartFile {
  /** Path relative to the experiment folder. */
  file: string;
  title: string;
  caption: string;
  png: Promise<Buffer>;
  /** Set for per-job charts. */
  jobId?: number;
}

interface CellSeries {
  labels: Record<string, string>;
  name: string;
  jobs: JobData[];
}

type XY = { x: number; y: number };

function cells(data: ExperimentData, layout: Layout): CellSeries[] {
  const map = new Map<string, CellSeries>();
  for (const job of data.jobs) {
    const key = cellKey(layout, job.labels);
    let c = map.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      for (const a of layout.cellAxes) if (job.labels[a] !== undefined) labels[a] = job.labels[a]!;
      c = { labels, name: seriesName(layout, labels), jobs: [] };
      map.set(key, c);
    }
    c.jobs.push(job);
  }
  const rank = (c: CellSeries): number[] => layout.cellAxes.map((a) => axisLabels(layout, a).indexOf(c.labels[a] ?? ''));
  return [...map.values()].sort((x, y) => {
    const rx = rank(x), ry = rank(y);
    for (let i = 0; i < rx.length; i++) if (rx[i] !== ry[i]) return rx[i]! - ry[i]!;
    return 0;
  });
}

function seriesName(layout: Layout, labels: Record<string, string>): string {
  const parts = layout.cellAxes.filter((a) => labels[a] !== undefined).map((a) => `${a}=${labels[a]}`);
  return parts.join(', ') || 'all jobs';
}

function thin<T>(points: T[]): T[] {
  if (points.length <= MAX_POINTS) return points;
  const stride = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % stride === 0 || i === points.length - 1);
}

/** Mean over the cell's done jobs, step by step; x is the step or the mean elapsed seconds at that step. */
function meanCurve(jobs: readonly JobData[], name: string, x: 'step' | 'elapsed'): XY[] {
  const acc = new Map<number, { v: number; e: number; ne: number; n: number }>();
  for (const job of jobs) {
    if (job.status !== 'done') continue;
    const curve = job.curves.get(name);
    if (!curve) continue;
    for (let i = 0; i < curve.step.length; i++) {
      const step = curve.step[i]!;
      const e = curve.elapsed[i] ?? null;
      const a = acc.get(step) ?? { v: 0, e: 0, ne: 0, n: 0 };
      a.v += curve.value[i]!;
      a.n++;
      if (e !== null) {
        a.e += e;
        a.ne++;
      }
      acc.set(step, a);
    }
  }
  const scale = isFractionMetric(name) ? 100 : 1;
  const out: XY[] = [];
  for (const [step, a] of [...acc].sort((p, q) => p[0] - q[0])) {
    if (x === 'elapsed' && a.ne === 0) continue;
    out.push({ x: x === 'step' ? step : a.e / a.ne, y: (a.v / a.n) * scale });
  }
  return thin(out);
}

/** Log-axis ticks at 1, 2 and 5 times a power of ten only, in short exponential form. */
function logTick(v: number): string | null {
  const lead = v / 10 ** Math.floor(Math.log10(v));
  if (![1, 2, 5].some((d) => Math.abs(lead - d) < 1e-6)) return null;
  return v >= 1e4 || v < 1e-2 ? v.toExponential(0).replace('e+', 'e') : String(v);
}

function lineConfig(title: string, xTitle: string, yTitle: string, datasets: ChartDataset<'line', XY[]>[], opts: { logX?: boolean } = {}): ChartConfiguration {
  return {
    type: 'line',
    data: { datasets } as ChartConfiguration['data'],
    options: {
      parsing: false,
      plugins: { title: { display: true, text: title }, legend: { position: 'bottom', labels: { boxWidth: 12 } } },
      scales: {
        x: opts.logX
          ? { type: 'logarithmic', title: { display: true, text: xTitle }, ticks: { callback: (v) => logTick(Number(v)) } }
          : { type: 'linear', title: { display: true, text: xTitle } },
        y: { type: 'linear', title: { display: true, text: yTitle } },
      },
    },
  };
}

function curveChart(series: CellSeries[], metric: string, x: 'step' | 'elapsed', file: string, title: string, caption: string): ChartFile | null {
  const shown = series.slice(0, MAX_LINES);
  const datasets = shown
    .map((s, i) => ({
      label: s.name,
      data: meanCurve(s.jobs, metric, x),
      borderColor: color(i),
      backgroundColor: color(i),
      pointRadius: metric === 'loss' ? 0 : 3,
      borderWidth: 2,
      showLine: true,
    }))
    .filter((d) => d.data.length > 0);
  if (datasets.length === 0) return null;
  const yTitle = isFractionMetric(metric) ? `${prettyMetric(metric)} (%)` : prettyMetric(metric);
  const more = series.length > MAX_LINES ? ` Only the first ${MAX_LINES} of ${series.length} cells are drawn.` : '';
  const png = renderChart(lineConfig(title, x === 'step' ? 'step' : 'wall-clock seconds', yTitle, datasets));
  return { file, title, caption: caption + more, png };
}

/** One result metric against a numeric axis: mean line per combination of the other axes, seeds as dots. */
/** Axes that split lines in a chart over `axis`: not the axis itself, nor the axes zipped with it. */
function lineAxes(layout: Layout, axis: string): string[] {
  const zip = new Set([layout.rowsAxis, ...layout.companions.keys()]);
  const inZip = zip.has(axis);
  return layout.cellAxes.filter((a) => a !== axis && !(inZip && zip.has(a)));
}

function metricVsAxis(data: ExperimentData, layout: Layout, series: CellSeries[], metric: string, axis: string): ChartFile | null {
  const others = lineAxes(layout, axis);
  const lines = new Map<string, { name: string; mean: XY[]; seeds: XY[] }>();
  const unit = unitOf(metric);
  for (const s of series) {
    const xLabel = s.labels[axis];
    if (xLabel === undefined) continue;
    const x = Number(xLabel);
    const values = s.jobs.flatMap((j) => {
      const v = j.status === 'done' ? j.results.get(metric) : undefined;
      return typeof v === 'number' && Number.isFinite(v) ? [toDisplay(unit, v)] : [];
    });
    const stat = summarize(values);
    if (!stat) continue;
    const key = JSON.stringify(others.map((a) => s.labels[a] ?? ''));
    const line = lines.get(key) ?? { name: others.map((a) => `${a}=${s.labels[a] ?? ''}`).join(', ') || metric, mean: [], seeds: [] };
    line.mean.push({ x, y: stat.mean });
    for (const v of values) line.seeds.push({ x, y: v });
    lines.set(key, line);
  }
  if (lines.size === 0) return null;
  const xs = axisLabels(layout, axis).map(Number);
  const logX = xs.every((v) => v > 0) && Math.max(...xs) / Math.min(...xs) >= 8;
  const datasets: ChartDataset<'line', XY[]>[] = [];
  [...lines.values()].slice(0, MAX_LINES).forEach((l, i) => {
    l.mean.sort((a, b) => a.x - b.x);
    datasets.push({ label: l.name, data: l.mean, borderColor: color(i), backgroundColor: color(i), pointRadius: 4, borderWidth: 2 });
    if (l.seeds.length > l.mean.length) {
      datasets.push({ label: `${l.name} (seeds)`, data: l.seeds, borderColor: color(i), backgroundColor: color(i), pointRadius: 2, showLine: false });
    }
  });
  const yTitle = prettyMetric(metric) + (unit === 'percent' ? ' (%)' : unit === 'mib' ? ' (MiB)' : unit === 'seconds' ? ' (s)' : '');
  const title = `${prettyMetric(metric)} vs ${axis}`;
  const png = renderChart(lineConfig(title, axis, yTitle, datasets, { logX }));
  const safe = `${metric}-vs-${axis}`.replace(/[^A-Za-z0-9._-]/g, '_');
  return { file: `${safe}.png`, title, caption: `Mean over finished seeds (line) and each seed (dots) of ${data.row.name}.`, png };
}

function accuracyVsFlops(layout: Layout, series: CellSeries[], axis: string): ChartFile | null {
  const others = lineAxes(layout, axis);
  const groups = new Map<string, { name: string; points: (XY & { label: string })[] }>();
  for (const s of series) {
    const done = s.jobs.filter((j) => j.status === 'done');
    const flops = summarize(done.map((j) => j.results.get('train_flops')).filter((v): v is number => typeof v === 'number'));
    const acc = summarize(done.map((j) => j.results.get('zero_shot_top1')).filter((v): v is number => typeof v === 'number'));
    if (!flops || !acc || flops.mean <= 0) continue;
    const key = JSON.stringify(others.map((a) => s.labels[a] ?? ''));
    const g = groups.get(key) ?? { name: others.map((a) => `${a}=${s.labels[a] ?? ''}`).join(', ') || axis, points: [] };
    g.points.push({ x: flops.mean, y: acc.mean * 100, label: s.labels[axis] ?? '' });
    groups.set(key, g);
  }
  if (groups.size === 0) return null;
  const datasets: ChartDataset<'line', XY[]>[] = [...groups.values()].slice(0, MAX_LINES).map((g, i) => ({
    label: g.name,
    data: g.points,
    borderColor: color(i),
    backgroundColor: color(i),
    pointRadius: 5,
    borderWidth: 1,
    showLine: true,
  }));
  const title = `zero-shot top-1 vs training compute (${axis})`;
  const png = renderChart(lineConfig(title, 'train FLOPs', 'zero-shot top-1 (%)', datasets, { logX: true }));
  const order = axisLabels(layout, axis).join(' → ');
  return { file: 'accuracy-vs-flops.png', title, caption: `One point per ${axis} value (${order}), mean over finished seeds.`, png };
}

function jobChart(job: JobData): ChartFile | null {
  const loss = job.curves.get('loss');
  const acc = job.curves.get('zero_shot_top1');
  if (!loss && !acc) return null;
  const datasets: ChartDataset<'line', XY[]>[] = [];
  if (loss) datasets.push({ label: 'loss', data: thin(loss.step.map((s, i) => ({ x: s, y: loss.value[i]! }))), borderColor: color(0), backgroundColor: color(0), pointRadius: 0, yAxisID: 'y' });
  if (acc) datasets.push({ label: 'zero-shot top-1 (%)', data: acc.step.map((s, i) => ({ x: s, y: acc.value[i]! * 100 })), borderColor: color(1), backgroundColor: color(1), pointRadius: 3, yAxisID: 'y1' });
  const config = lineConfig(`job ${job.id} (${job.status})`, 'step', 'loss', datasets);
  const scales = (config.options!.scales ??= {});
  scales['y1'] = { type: 'linear', position: 'right', title: { display: true, text: 'zero-shot top-1 (%)' }, grid: { drawOnChartArea: false } };
  return { file: `jobs/job-${job.id}.png`, title: `job ${job.id}`, caption: '', png: renderChart(config, 520, 300), jobId: job.id };
}

export function buildCharts(data: ExperimentData, layout: Layout): ChartFile[] {
  const series = cells(data, layout);
  const out: (ChartFile | null)[] = [];
  out.push(curveChart(series, 'zero_shot_top1', 'elapsed', 'accuracy-vs-time.png', 'zero-shot top-1 vs wall-clock time', 'Evaluation curves against training time, one line per cell, mean over finished seeds (the paper\'s Figure 1).'));
  out.push(curveChart(series, 'loss', 'step', 'loss.png', 'training loss', 'Training loss per step, one line per cell, mean over finished seeds.'));
  out.push(curveChart(series, 'zero_shot_top1', 'step', 'accuracy-vs-step.png', 'zero-shot top-1 vs step', 'Evaluation curves per step, mean over finished seeds.'));
  const plotAxes = [layout.rowsAxis, layout.columnsAxis].filter((a): a is string => a !== null && isNumericAxis(axisLabels(layout, a)));
  const resultMetrics = layout.report.metrics.filter((m) => !m.includes('.') && !/rel|relative|^batch/.test(m));
  for (const axis of plotAxes) for (const m of resultMetrics) out.push(metricVsAxis(data, layout, series, m, axis));
  const scaling = layout.cellAxes.find((a) => SCALING_AXES.includes(a));
  if (scaling) out.push(accuracyVsFlops(layout, series, scaling));
  for (const job of data.jobs.slice(0, MAX_JOB_CHARTS)) out.push(jobChart(job));
  return out.filter((c): c is ChartFile => c !== null);
}
