/**
 * The plots of an experiment page, as PNG files beside it:
 *   accuracy-vs-time[-<block>]  the paper's Figure 1: zero-shot top-1 against training time per cell, mean over
 *                      seeds on a common time axis with a ±1 std band (figure1.ts), one plot per table block
 *   loss, accuracy-vs-step   training loss / zero-shot top-1 against step per cell
 *   <metric>-vs-<axis>  each result metric against a numeric rows/columns axis (mean line, seeds as dots)
 *   accuracy-vs-flops   when an axis scales model, data or budget
 *   jobs/job-<id>       loss and accuracy of single jobs, for the first MAX_JOB_CHARTS jobs only
 * Aggregate curves average the seeds of a cell step by step, over finished ('done') jobs.
 */
import type { ChartConfiguration, ChartDataset } from 'chart.js';
import { axisLabels, cellKey, type Layout } from './axes.js';
import { fixedByBudget } from './budget.js';
import { color, renderChart } from './chart-render.js';
import { isFractionMetric, metricHeader, prettyMetric, toDisplay, unitOf } from './columns.js';
import { figure1Panels, type Figure1Panel } from './figure1.js';
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

/** Mean over the cell's done jobs, step by step. */
function meanCurve(jobs: readonly JobData[], name: string): XY[] {
  const acc = new Map<number, { v: number; n: number }>();
  for (const job of jobs) {
    if (job.status !== 'done') continue;
    const curve = job.curves.get(name);
    if (!curve) continue;
    for (let i = 0; i < curve.step.length; i++) {
      const step = curve.step[i]!;
      const a = acc.get(step) ?? { v: 0, n: 0 };
      a.v += curve.value[i]!;
      a.n++;
      acc.set(step, a);
    }
  }
  const scale = isFractionMetric(name) ? 100 : 1;
  const out: XY[] = [];
  for (const [step, a] of [...acc].sort((p, q) => p[0] - q[0])) out.push({ x: step, y: (a.v / a.n) * scale });
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

function curveChart(series: CellSeries[], metric: string, file: string, title: string, caption: string): ChartFile | null {
  const shown = series.slice(0, MAX_LINES);
  const datasets = shown
    .map((s, i) => ({
      label: s.name,
      data: meanCurve(s.jobs, metric),
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
  const png = renderChart(lineConfig(title, 'step', yTitle, datasets));
  return { file, title, caption: caption + more, png };
}

const BAND = ' ±1 std';

/** One Figure 1 panel: a mean line per cell and, where n > 1, a ±1 std band drawn as two filled edges. */
function figure1Chart(panel: Figure1Panel, file: string): ChartFile {
  const datasets: ChartDataset<'line', XY[]>[] = [];
  panel.curves.slice(0, MAX_LINES).forEach((c, i) => {
    const label = `${c.name} (n=${c.n})`;
    const pointRadius = c.time.length > 40 ? 0 : 3;
    datasets.push({ label, data: c.time.map((t, k) => ({ x: t, y: c.mean[k]! })), borderColor: color(i), backgroundColor: color(i), pointRadius, borderWidth: 2 });
    if (c.std.some((s) => s !== null)) {
      const edge = (sign: number): XY[] => c.time.map((t, k) => ({ x: t, y: c.mean[k]! + sign * (c.std[k] ?? 0) }));
      datasets.push({ label: label + BAND, data: edge(-1), borderColor: 'transparent', pointRadius: 0, borderWidth: 0, fill: false });
      datasets.push({ label: label + BAND, data: edge(1), borderColor: 'transparent', backgroundColor: `${color(i)}33`, pointRadius: 0, borderWidth: 0, fill: '-1' });
    }
  });
  const title = `zero-shot top-1 vs training time${panel.title ? ` (${panel.title})` : ''}`;
  const config = lineConfig(title, 'training time (s)', 'zero-shot top-1 (%)', datasets);
  config.options!.plugins!.legend!.labels!.filter = (item) => !item.text.endsWith(BAND);
  const more = panel.curves.length > MAX_LINES ? ` Only the first ${MAX_LINES} of ${panel.curves.length} cells are drawn.` : '';
  const caption =
    `The paper's Figure 1 from our evaluation points: one line per cell, the mean over its finished seeds on a common ` +
    `time axis (every evaluation time inside the span all seeds cover, each seed interpolated linearly), shaded ±1 std ` +
    `where n > 1. Points in figure1.csv.${more}`;
  return { file, title, caption, png: renderChart(config) };
}

/** Figure 1 panels as charts: accuracy-vs-time.png, or one accuracy-vs-time-<block>.png per table block. */
export function figure1Charts(panels: readonly Figure1Panel[]): ChartFile[] {
  return panels.map((p) =>
    figure1Chart(p, panels.length === 1 ? 'accuracy-vs-time.png' : `accuracy-vs-time-${Object.values(p.group).join('-').replace(/[^A-Za-z0-9._-]/g, '_')}.png`),
  );
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
  const lines = new Map<string, { name: string; mean: XY[]; seeds: XY[]; jobs: JobData[] }>();
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
    const line = lines.get(key) ?? { name: others.map((a) => `${a}=${s.labels[a] ?? ''}`).join(', ') || metric, mean: [], seeds: [], jobs: [] };
    line.jobs.push(...s.jobs);
    line.mean.push({ x, y: stat.mean });
    for (const v of values) line.seeds.push({ x, y: v });
    lines.set(key, line);
  }
  // A line of what its block's budget holds fixed (train time under an equal-time budget) is flat by design.
  for (const [key, l] of lines) if (fixedByBudget(l.jobs)?.metrics.includes(metric)) lines.delete(key);
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
  const yTitle = metricHeader(metric);
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

export function buildCharts(data: ExperimentData, layout: Layout, panels: readonly Figure1Panel[] = figure1Panels(data, layout)): ChartFile[] {
  const series = cells(data, layout);
  const out: (ChartFile | null)[] = [...figure1Charts(panels)];
  out.push(curveChart(series, 'loss', 'loss.png', 'training loss', 'Training loss per step, one line per cell, mean over finished seeds.'));
  out.push(curveChart(series, 'zero_shot_top1', 'accuracy-vs-step.png', 'zero-shot top-1 vs step', 'Evaluation curves per step, mean over finished seeds.'));
  const plotAxes = [layout.rowsAxis, layout.columnsAxis].filter((a): a is string => a !== null && isNumericAxis(axisLabels(layout, a)));
  const resultMetrics = layout.report.metrics.filter((m) => !m.includes('.') && !/rel|relative|^batch/.test(m));
  for (const axis of plotAxes) for (const m of resultMetrics) out.push(metricVsAxis(data, layout, series, m, axis));
  const scaling = layout.cellAxes.find((a) => SCALING_AXES.includes(a));
  if (scaling) out.push(accuracyVsFlops(layout, series, scaling));
  for (const job of data.jobs.slice(0, MAX_JOB_CHARTS)) out.push(jobChart(job));
  return out.filter((c): c is ChartFile => c !== null);
}
