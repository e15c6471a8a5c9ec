/**
 * The paper's numbers beside ours. reports/paper-results.json holds Table 1 (a)-(f) and Table 8 as data; the spec's
 * report.paper names one of its keys. Paper rows are matched to our axis labels by label, or by position when our
 * labels differ but the counts agree (our batches are not 16k), and the report says which. For every series the
 * verdict compares directions only: the same ordering of every pair of rows (hence the same sign of each
 * difference to the baseline). Nothing here adjusts our numbers.
 */
import { readFileSync } from 'node:fs';
import { axisLabels, type Layout } from './axes.js';
import { toDisplay, unitOf, type ColumnDef, type Unit } from './columns.js';
import { fixedByBudget } from './budget.js';
import { formatNumber } from './format.js';
import type { JobData } from './load.js';
import { summarize, type Stat } from './stats.js';
import type { Cell, TableBuilder, TableModel } from './table.js';

export interface PaperRow {
  key: string;
  /** Our axis label expected for this row; absent when the row is told apart by `metric` instead. */
  label?: string;
  /** Result name for this row instead of the series' (Table 1e: before/after tuning of the same jobs). */
  metric?: string;
  paper_label: string;
}

export interface PaperSeries {
  name: string;
  metric: string;
  kind: 'value' | 'ratio';
  /** Columns-axis label of our grid this series is read from. */
  column?: string;
  column_paper_label?: string;
  values: Record<string, number>;
}

export interface PaperTable {
  title: string;
  setting?: string;
  rows_axis: string | null;
  columns_axis: string | null;
  baseline: string | null;
  rows: PaperRow[];
  series: PaperSeries[];
}

export type PaperResults = Record<string, PaperTable>;

export function loadPaperResults(path: string): PaperResults {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const out: PaperResults = {};
  for (const [k, v] of Object.entries(raw)) if (!k.startsWith('_')) out[k] = v as PaperTable;
  return out;
}

export interface ComparedPoint {
  rowKey: string;
  paperLabel: string;
  /** Our cell's labels; null when no row of ours corresponds. */
  ourLabels: Record<string, string> | null;
  paper: number;
  ours: Stat | null;
}

export type Verdict = 'agrees' | 'disagrees' | 'cannot compare';

export interface SeriesComparison {
  series: PaperSeries;
  unit: Unit;
  /** Labels of our axes the paper has no counterpart for (one comparison per combination). */
  group: Record<string, string>;
  points: ComparedPoint[];
  verdict: Verdict;
  statement: string;
}

export interface PaperComparison {
  key: string;
  table: PaperTable;
  /** How paper rows/columns were matched to our labels. */
  notes: string[];
  /** Our rows axis the paper's rows correspond to (null for metric rows). */
  rowsAxis: string | null;
  columnsAxis: string | null;
  rowLabelOf: Map<string, string>;
  comparisons: SeriesComparison[];
}

/** Our axis for one of the paper's: the same name, else the axis with the same role in our report. */
function pickAxis(paperAxis: string | null, layout: Layout, role: 'rows' | 'columns', taken: string | null): string | null {
  if (paperAxis === null) return null;
  if (layout.cellAxes.includes(paperAxis)) return paperAxis;
  const fallback = role === 'rows' ? layout.rowsAxis : layout.columnsAxis;
  return fallback !== taken ? fallback : null;
}

/** paper label -> our label, by equality when all match, else by position when the counts agree. */
function mapLabels(paperLabels: string[], ours: string[], what: string, notes: string[]): Map<string, string> {
  const map = new Map<string, string>();
  if (paperLabels.every((l) => ours.includes(l))) {
    for (const l of paperLabels) map.set(l, l);
    return map;
  }
  if (paperLabels.length === ours.length) {
    paperLabels.forEach((l, i) => map.set(l, ours[i]!));
    notes.push(`${what}: our labels differ from the paper's, matched by position: ${paperLabels.map((l, i) => `${l} → ${ours[i]}`).join(', ')}.`);
    return map;
  }
  for (const l of paperLabels) if (ours.includes(l)) map.set(l, l);
  const unmatched = paperLabels.filter((l) => !ours.includes(l));
  notes.push(`${what}: not in our sweep: ${unmatched.join(', ')} (ours: ${ours.join(', ') || 'none'}).`);
  return map;
}

function fmt(unit: Unit, v: number): string {
  return formatNumber(unit, v);
}

function rel(a: number, b: number): string {
  return a > b ? '>' : a < b ? '<' : '=';
}

/** Pairwise directions, baseline pairs first. */
function judge(points: ComparedPoint[], baselineKey: string | null, unit: Unit): { verdict: Verdict; statement: string } {
  const usable = points.filter((p) => p.ours !== null);
  if (usable.length < 2) {
    return { verdict: 'cannot compare', statement: `cannot compare: ${usable.length} of the paper's ${points.length} rows have finished results of ours.` };
  }
  const pairs: [ComparedPoint, ComparedPoint][] = [];
  const base = usable.find((p) => p.rowKey === baselineKey);
  if (base) for (const p of usable) if (p !== base) pairs.push([p, base]);
  for (let i = 0; i < usable.length; i++) {
    for (let j = i + 1; j < usable.length; j++) {
      if (usable[i] === base || usable[j] === base) continue;
      pairs.push([usable[j]!, usable[i]!]);
    }
  }
  const problems: string[] = [];
  for (const [a, b] of pairs) {
    const pa = a.paper, pb = b.paper;
    const oa = a.ours!.mean, ob = b.ours!.mean;
    if (Math.sign(pa - pb) === Math.sign(oa - ob)) continue;
    const noise = Math.max(a.ours!.std ?? 0, b.ours!.std ?? 0);
    const within = noise > 0 && Math.abs(oa - ob) <= noise ? ' (our difference is within one std)' : '';
    problems.push(`paper ${fmt(unit, pa)} ${rel(pa, pb)} ${fmt(unit, pb)} at ${a.paperLabel} vs ${b.paperLabel}, ours ${fmt(unit, oa)} ${rel(oa, ob)} ${fmt(unit, ob)}${within}`);
  }
  const skipped = points.length - usable.length;
  const tail = skipped ? ` (${skipped} of the paper's rows have no finished result of ours)` : '';
  if (problems.length === 0) {
    const basePart = base ? ` and the same sign of every difference to the baseline (${base.paperLabel})` : '';
    return { verdict: 'agrees', statement: `agrees: same ordering of the ${usable.length} rows${basePart}${tail}.` };
  }
  return { verdict: 'disagrees', statement: `disagrees: ${problems.join('; ')}${tail}.` };
}

function oursFor(builder: TableBuilder, labels: Record<string, string>, metric: string, kind: 'value' | 'ratio', baseLabels: Record<string, string> | null): Stat | null {
  const unit = unitOf(metric);
  const values = (jobs: JobData[]): number[] =>
    jobs.flatMap((j) => {
      const v = j.status === 'done' ? j.results.get(metric) : undefined;
      return typeof v === 'number' && Number.isFinite(v) ? [toDisplay(unit, v)] : [];
    });
  const own = summarize(values(builder.jobsAt(labels)));
  if (!own || kind === 'value') return own;
  if (!baseLabels) return null;
  const ref = summarize(values(builder.jobsAt(baseLabels)));
  if (!ref || ref.mean === 0) return null;
  return { mean: own.mean / ref.mean, std: null, n: own.n };
}

/** Combinations (present in the jobs) of our axes the paper table does not cover. */
function extraCombos(layout: Layout, jobs: readonly JobData[], covered: (string | null)[]): Record<string, string>[] {
  const extra = layout.cellAxes.filter((a) => !covered.includes(a) && !layout.companions.has(a) && !layout.columnCompanions.has(a));
  const seen = new Map<string, Record<string, string>>();
  for (const j of jobs) {
    const c: Record<string, string> = {};
    for (const a of extra) c[a] = j.labels[a] ?? '';
    seen.set(JSON.stringify(c), c);
  }
  const combos = [...seen.values()];
  return combos.length ? combos : [{}];
}

export function comparePaper(key: string, table: PaperTable, layout: Layout, builder: TableBuilder, jobs: readonly JobData[]): PaperComparison {
  const notes: string[] = [];
  const rowsAxis = pickAxis(table.rows_axis, layout, 'rows', null);
  const columnsAxis = pickAxis(table.columns_axis, layout, 'columns', rowsAxis);
  if (table.rows_axis && rowsAxis && rowsAxis !== table.rows_axis) notes.push(`The paper's rows (${table.rows_axis}) are read from our axis ${rowsAxis}.`);
  if (table.columns_axis && columnsAxis && columnsAxis !== table.columns_axis) notes.push(`The paper's columns (${table.columns_axis}) are read from our axis ${columnsAxis}.`);
  if (table.rows_axis && !rowsAxis) notes.push(`Our experiment has no axis for the paper's rows (${table.rows_axis}).`);
  if (table.columns_axis && !columnsAxis) notes.push(`Our experiment has no axis for the paper's columns (${table.columns_axis}).`);

  const labelRows = table.rows.filter((r) => r.label !== undefined);
  const rowMap = rowsAxis ? mapLabels(labelRows.map((r) => r.label!), axisLabels(layout, rowsAxis), `rows (${rowsAxis})`, notes) : new Map<string, string>();
  const colLabels = [...new Set(table.series.map((s) => s.column).filter((c): c is string => c !== undefined))];
  const colMap = columnsAxis ? mapLabels(colLabels, axisLabels(layout, columnsAxis), `columns (${columnsAxis})`, notes) : new Map<string, string>();
  const rowLabelOf = new Map<string, string>();
  for (const r of labelRows) {
    const ours = rowMap.get(r.label!);
    if (ours !== undefined) rowLabelOf.set(r.key, ours);
  }

  const baseRow = table.rows.find((r) => r.key === table.baseline) ?? null;
  const comparisons: SeriesComparison[] = [];
  for (const group of extraCombos(layout, jobs, [rowsAxis, columnsAxis])) {
    // A series of what the block's budget holds fixed (wall-clock time under an equal-time budget) compares nothing.
    const fixed = fixedByBudget(jobs.filter((j) => Object.entries(group).every(([a, l]) => (j.labels[a] ?? '') === l)));
    for (const series of table.series) {
      if (fixed?.metrics.includes(series.metric)) {
        notes.push(`${series.name}${Object.keys(group).length ? ` [ours: ${Object.entries(group).map(([a, l]) => `${a} = ${l}`).join(', ')}]` : ''}: not compared, ${fixed.reason}.`);
        continue;
      }
      const unit: Unit = series.kind === 'ratio' ? 'ratio' : unitOf(series.metric);
      const colLabel = series.column !== undefined ? colMap.get(series.column) : undefined;
      const colOk = series.column === undefined || (columnsAxis !== null && colLabel !== undefined);
      const labelsFor = (row: PaperRow): Record<string, string> | null => {
        if (!colOk) return null;
        const labels: Record<string, string> = { ...group };
        if (columnsAxis && colLabel !== undefined) labels[columnsAxis] = colLabel;
        if (row.label !== undefined) {
          const ours = rowLabelOf.get(row.key);
          if (!rowsAxis || ours === undefined) return null;
          labels[rowsAxis] = ours;
        }
        return labels;
      };
      const baseLabels = baseRow ? labelsFor(baseRow) : null;
      const points: ComparedPoint[] = table.rows
        .filter((r) => r.key in series.values)
        .map((r) => {
          const ourLabels = labelsFor(r);
          const metric = r.metric ?? series.metric;
          const ours = ourLabels ? oursFor(builder, ourLabels, metric, series.kind, baseLabels) : null;
          return { rowKey: r.key, paperLabel: r.paper_label, ourLabels, paper: series.values[r.key]!, ours };
        });
      comparisons.push({ series, unit, group, points, ...judge(points, table.baseline, unit) });
    }
  }
  return { key, table, notes, rowsAxis, columnsAxis, rowLabelOf, comparisons };
}

function paperCell(value: number | undefined): Cell {
  return {
    status: value === undefined ? 'missing' : 'paper',
    stat: value === undefined ? null : { mean: value, std: null, n: 0 },
    counts: { pending: 0, running: 0, done: 0, failed: 0, interrupted: 0 },
    jobs: 0,
    errors: [],
    baseline: false,
  };
}

/**
 * Adds the paper's numbers as columns of our table: after the matching metric column of a list, or one column
 * per paper series at the end of a grid. Only when the paper's rows are our rows axis.
 */
export function addPaperColumns(model: TableModel, cmp: PaperComparison): void {
  if (!cmp.rowsAxis || cmp.rowsAxis !== model.rowsAxis) return;
  const keyOfLabel = new Map([...cmp.rowLabelOf].map(([k, l]) => [l, k]));
  for (const s of cmp.table.series) {
    let at: number;
    let col: ColumnDef;
    if (model.kind === 'grid') {
      if (s.column === undefined || cmp.columnsAxis !== model.columnsAxis) continue;
      at = model.columns.length;
      col = { key: `paper:${s.metric}@${s.column}`, header: `paper ${s.column_paper_label ?? s.column}`, unit: unitOf(s.metric), source: { kind: 'paper', series: s.name, metric: s.metric } };
    } else {
      if (s.column !== undefined) continue;
      const idx = model.columns.findIndex((c) =>
        s.kind === 'ratio' ? c.source.kind === 'relative' && c.source.name === s.metric : c.source.kind === 'result' && c.source.name === s.metric,
      );
      if (idx < 0) continue;
      at = idx + 1;
      col = { key: `paper:${s.metric}${s.kind === 'ratio' ? '_rel' : ''}`, header: 'paper', unit: s.kind === 'ratio' ? 'ratio' : unitOf(s.metric), source: { kind: 'paper', series: s.name, metric: s.metric } };
    }
    model.columns.splice(at, 0, col);
    for (const g of model.groups) {
      for (const row of g.rows) {
        const key = keyOfLabel.get(row.label);
        row.cells.splice(at, 0, paperCell(key === undefined ? undefined : s.values[key]));
      }
    }
  }
  model.notes.push(`"paper" columns: ${cmp.table.title} (${cmp.key} in reports/paper-results.json).`);
}
