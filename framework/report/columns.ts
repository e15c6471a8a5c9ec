/**
 * What each metric column of a table shows and in which unit. report.metrics names results (zero_shot_top1,
 * train_seconds, ...); a few derived names are understood as well:
 *   time_relative / train_seconds_rel   train_seconds divided by the baseline cell's (added after train_seconds)
 *   flops_relative / train_flops_rel    train_flops divided by the baseline cell's (shown instead of raw FLOPs)
 *   batch_size / train.batch_size       read from the jobs' config
 *   any dotted config path ('mask.image_ratio') that is not a result name is read from the config too.
 * Load adds one derived result to every finished job with a zero-shot curve: zero_shot_top1_tail_gain (tail-gain.ts).
 */
import { TAIL_GAIN_RESULT } from './tail-gain.js';

/** 'points': a difference of two percentages, stored as a fraction like them (zero_shot_top1_tail_gain). */
export type Unit = 'percent' | 'points' | 'seconds' | 'ratio' | 'mib' | 'count' | 'flops' | 'loss' | 'number';

export type ColumnSource =
  | { kind: 'result'; name: string }
  | { kind: 'relative'; name: string }
  | { kind: 'config'; path: string }
  | { kind: 'paper'; series: string; metric: string };

export interface ColumnDef {
  /** Stable id, also used as the CSV column name. */
  key: string;
  header: string;
  unit: Unit;
  source: ColumnSource;
  /** For grids: the columns-axis label this column shows. */
  columnLabel?: string;
}

const PRETTY: Record<string, string> = {
  zero_shot_top1: 'zero-shot top-1',
  zero_shot_top5: 'zero-shot top-5',
  retrieval_i2t_r1: 'I→T R@1',
  retrieval_i2t_r5: 'I→T R@5',
  retrieval_i2t_r10: 'I→T R@10',
  retrieval_t2i_r1: 'T→I R@1',
  retrieval_t2i_r5: 'T→I R@5',
  retrieval_t2i_r10: 'T→I R@10',
  train_seconds: 'train time',
  samples_seen: 'samples seen',
  steps: 'steps',
  train_flops: 'train FLOPs',
  peak_memory_bytes: 'peak memory',
  final_loss: 'final loss',
  zero_shot_top1_tail_gain: 'zero-shot top-1 gained in the last 20%',
};

/** Fractions in 0..1 shown as percentages. */
export function isFractionMetric(name: string): boolean {
  const base = name.replace(/^pretune_/, '');
  return base.startsWith('zero_shot_') || base.startsWith('retrieval_');
}

export function unitOf(name: string): Unit {
  const base = name.replace(/^pretune_/, '');
  if (base === TAIL_GAIN_RESULT) return 'points';
  if (isFractionMetric(base)) return 'percent';
  if (base === 'train_seconds' || base.endsWith('_seconds')) return 'seconds';
  if (base === 'peak_memory_bytes' || base.endsWith('_bytes')) return 'mib';
  if (base === 'train_flops' || base.endsWith('_flops')) return 'flops';
  if (base === 'steps' || base === 'samples_seen') return 'count';
  if (base.endsWith('loss')) return 'loss';
  return 'number';
}

/** Converts a stored value into the unit a column shows (fraction -> % or points, bytes -> MiB). */
export function toDisplay(unit: Unit, value: number): number {
  if (unit === 'percent' || unit === 'points') return value * 100;
  if (unit === 'mib') return value / (1024 * 1024);
  return value;
}

export function prettyMetric(name: string): string {
  const pre = name.startsWith('pretune_');
  const base = pre ? name.slice('pretune_'.length) : name;
  const text = PRETTY[base] ?? base;
  return pre ? `${text} (before tuning)` : text;
}

function header(name: string, unit: Unit): string {
  const suffix: Record<Unit, string> = {
    percent: ' (%)', points: ' (points)', seconds: ' (s)', ratio: '', mib: ' (MiB)', count: '', flops: '', loss: '', number: '',
  };
  return prettyMetric(name) + suffix[unit];
}

const TIME_REL = new Set(['time_relative', 'relative_time', 'train_seconds_rel', 'time_rel']);
const FLOPS_REL = new Set(['flops_relative', 'relative_flops', 'train_flops_rel', 'flops_rel']);
const BATCH = new Set(['batch_size', 'train.batch_size', 'batch']);

function relative(name: string, label: string): ColumnDef {
  return { key: `${name}_rel`, header: label, unit: 'ratio', source: { kind: 'relative', name } };
}

/**
 * Columns of a list table for report.metrics. train_seconds is followed by its ratio to the baseline, train_flops is
 * shown as a ratio when there is a baseline (as the paper does), and a batch-size column is appended when the
 * metrics do not name one (every FLIP table states its batch).
 */
export function metricColumns(metrics: readonly string[], hasBaseline: boolean, resultNames: ReadonlySet<string>): ColumnDef[] {
  const cols: ColumnDef[] = [];
  const seen = new Set<string>();
  const push = (c: ColumnDef): void => {
    if (seen.has(c.key)) return;
    seen.add(c.key);
    cols.push(c);
  };
  for (const m of metrics) {
    if (TIME_REL.has(m)) push(relative('train_seconds', 'time (rel.)'));
    else if (FLOPS_REL.has(m)) push(relative('train_flops', 'FLOPs (rel.)'));
    else if (BATCH.has(m)) push({ key: 'batch_size', header: 'batch', unit: 'count', source: { kind: 'config', path: 'train.batch_size' } });
    else if (m === 'train_flops' && hasBaseline) push(relative('train_flops', 'FLOPs (rel.)'));
    else if (m.includes('.') && !resultNames.has(m)) push({ key: m, header: m, unit: 'number', source: { kind: 'config', path: m } });
    else {
      const unit = unitOf(m);
      push({ key: m, header: header(m, unit), unit, source: { kind: 'result', name: m } });
      if (m === 'train_seconds' && hasBaseline) push(relative('train_seconds', 'time (rel.)'));
    }
  }
  if (!seen.has('batch_size')) push({ key: 'batch_size', header: 'batch', unit: 'count', source: { kind: 'config', path: 'train.batch_size' } });
  return cols;
}

/** The single metric of a grid, one column per label of the columns axis. */
export function gridColumns(metric: string, axis: string, labels: readonly string[]): ColumnDef[] {
  const unit = unitOf(metric);
  return labels.map((label) => ({
    key: `${metric}@${axis}=${label}`,
    header: `${axis} = ${label}`,
    unit,
    source: { kind: 'result', name: metric } as ColumnSource,
    columnLabel: label,
  }));
}

export function metricHeader(name: string): string {
  return header(name, unitOf(name));
}

/** The result (or config path) a column is about: its own, its ratio's, or the paper series' metric. */
export function measureOf(col: ColumnDef): string {
  switch (col.source.kind) {
    case 'result':
    case 'relative':
      return col.source.name;
    case 'config':
      return col.source.path;
    case 'paper':
      return col.source.metric;
  }
}
