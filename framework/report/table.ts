/**
 * The table model: what the HTML, Markdown, LaTeX and CSV renderers all draw. One row per label of the rows axis
 * (declaration order), one block per combination of the other non-seed axes, seeds aggregated as mean ± std (n).
 * Every cell the axes imply is present: a cell without a finished job says why (failed, running, pending, missing).
 * Only jobs whose status is 'done' contribute numbers.
 */
import type { JobStatus } from '../store/types.js';
import { axisLabels, cellKey, companionText, describeLabels, groupCombos, indexCells, withCompanions, type Layout } from './axes.js';
import { gridColumns, measureOf, metricColumns, toDisplay, type ColumnDef } from './columns.js';
import { fixedByBudget, type FixedByBudget } from './budget.js';
import type { ExperimentData, JobData } from './load.js';
import { getPath, summarize, type Stat } from './stats.js';

export type CellStatus = 'ok' | 'failed' | 'interrupted' | 'running' | 'pending' | 'missing' | 'no-value' | 'paper';

export interface Cell {
  status: CellStatus;
  /** In the column's display unit (%, MiB, ratio ...). */
  stat: Stat | null;
  /** Jobs of the cell (all seeds) by status. */
  counts: Record<JobStatus, number>;
  jobs: number;
  /** Errors of the cell's failed jobs, for tooltips and footnotes. */
  errors: string[];
  /** The baseline cell (grids shade cells, lists shade rows). */
  baseline: boolean;
}

export interface TableRow {
  label: string;
  /** Labels of zip companions of the rows axis ('train.batch_size = 128'), '' when none. */
  companions: string;
  /** Every non-seed label of the row (group labels included; a grid row leaves the columns axis out). */
  labels: Record<string, string>;
  baseline: boolean;
  cells: Cell[];
  /** List tables: the row's seeds ('3', '2/3, 1 failed'), shown once in an n column; cells with that n omit it. */
  n: { text: string; done: number } | null;
}

export interface TableGroup {
  labels: Record<string, string>;
  /** '' when the experiment has no group axes. */
  title: string;
  rows: TableRow[];
  /** What the block's budget holds fixed (its columns are left out of the block); null when nothing is. */
  fixed: FixedByBudget | null;
}

export interface TableModel {
  experiment: string;
  kind: 'list' | 'grid';
  rowsAxis: string | null;
  columnsAxis: string | null;
  groupAxes: string[];
  columns: ColumnDef[];
  groups: TableGroup[];
  baseline: Record<string, string> | null;
  /** Lines printed under the table (what a grid shows, how missing cells read ...). */
  notes: string[];
}

function countStatuses(jobs: readonly JobData[]): Record<JobStatus, number> {
  const c: Record<JobStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, interrupted: 0 };
  for (const j of jobs) c[j.status]++;
  return c;
}

function statusWithoutValue(counts: Record<JobStatus, number>, jobs: number): CellStatus {
  if (jobs === 0) return 'missing';
  if (counts.done > 0) return 'no-value';
  if (counts.failed > 0) return 'failed';
  if (counts.interrupted > 0) return 'interrupted';
  if (counts.running > 0) return 'running';
  return 'pending';
}

function resultValues(jobs: readonly JobData[], name: string, col: ColumnDef): number[] {
  const out: number[] = [];
  for (const j of jobs) {
    if (j.status !== 'done') continue;
    const v = j.results.get(name);
    if (typeof v === 'number' && Number.isFinite(v)) out.push(toDisplay(col.unit, v));
  }
  return out;
}

/** Baseline cell of a cell: its own labels with the baseline's labels put over them. */
function baselineLabels(layout: Layout, labels: Record<string, string>): Record<string, string> | null {
  const b = layout.report.baseline;
  if (!b) return null;
  const out = { ...labels };
  for (const [axis, label] of Object.entries(b)) if (layout.cellAxes.includes(axis)) out[axis] = label;
  return out;
}

function matchesBaseline(layout: Layout, labels: Record<string, string>, axes: readonly string[]): boolean {
  const b = layout.report.baseline;
  if (!b) return false;
  let relevant = 0;
  for (const [axis, label] of Object.entries(b)) {
    if (!axes.includes(axis)) continue;
    relevant++;
    if (labels[axis] !== label) return false;
  }
  return relevant > 0;
}

function rowN(jobs: readonly JobData[]): { text: string; done: number } {
  const c = countStatuses(jobs);
  const parts = [c.done === jobs.length ? String(c.done) : `${c.done}/${jobs.length}`];
  for (const s of ['failed', 'interrupted', 'running', 'pending'] as const) if (c[s] > 0) parts.push(`${c[s]} ${s}`);
  return { text: parts.join(', '), done: c.done };
}

export class TableBuilder {
  private readonly cells: Map<string, JobData[]>;

  constructor(
    private readonly data: ExperimentData,
    private readonly layout: Layout,
  ) {
    this.cells = indexCells(layout, data.jobs);
  }

  jobsAt(labels: Record<string, string>): JobData[] {
    return this.cells.get(cellKey(this.layout, withCompanions(this.layout, labels))) ?? [];
  }

  /** Mean of a result over the done jobs of a cell, in stored units; null when there is none. */
  meanAt(labels: Record<string, string>, name: string): number | null {
    const xs: number[] = [];
    for (const j of this.jobsAt(labels)) {
      const v = j.status === 'done' ? j.results.get(name) : undefined;
      if (typeof v === 'number' && Number.isFinite(v)) xs.push(v);
    }
    return summarize(xs)?.mean ?? null;
  }

  cell(labels: Record<string, string>, col: ColumnDef, baseline: boolean): Cell {
    const jobs = this.jobsAt(labels);
    const counts = countStatuses(jobs);
    const errors = jobs.filter((j) => j.status !== 'done' && j.error).map((j) => `job ${j.id}: ${j.error}`);
    let stat: Stat | null = null;
    const src = col.source;
    if (src.kind === 'result') {
      stat = summarize(resultValues(jobs, src.name, col));
    } else if (src.kind === 'relative') {
      const own = summarize(resultValues(jobs, src.name, col));
      const refLabels = baselineLabels(this.layout, labels);
      const ref = refLabels ? this.meanAt(refLabels, src.name) : null;
      if (own && ref !== null && ref !== 0) stat = { mean: own.mean / ref, std: null, n: own.n };
    } else if (src.kind === 'config') {
      const values = [...new Set(jobs.map((j) => getPath(j.config, src.path)).filter((v) => typeof v === 'number'))] as number[];
      if (values.length === 1) stat = { mean: values[0]!, std: null, n: 0 };
      if (values.length > 1) stat = summarize(values);
    }
    const status: CellStatus = stat ? 'ok' : src.kind === 'config' && jobs.length > 0 ? 'no-value' : statusWithoutValue(counts, jobs.length);
    return { status, stat, counts, jobs: jobs.length, errors, baseline };
  }

  build(): TableModel {
    const { layout, data } = this;
    const rowsAxis = layout.rowsAxis;
    const columnsAxis = layout.columnsAxis;
    const rowLabels = rowsAxis ? axisLabels(layout, rowsAxis) : [''];
    const resultNames = new Set<string>();
    for (const j of data.jobs) for (const k of j.results.keys()) resultNames.add(k);
    const hasBaseline = layout.report.baseline !== null;
    const metric = layout.report.metrics[0]!;
    const columns = columnsAxis
      ? gridColumns(metric, columnsAxis, axisLabels(layout, columnsAxis))
      : metricColumns(layout.report.metrics, hasBaseline, resultNames);

    // Table 1(a) form: when the batch grows with the rows (a zip), it is a column right after n, not a note.
    const batchAt = columnsAxis || !layout.companions.has(BATCH_AXIS) ? -1 : columns.findIndex((c) => c.key === 'batch_size');
    if (batchAt > 0) columns.unshift(...columns.splice(batchAt, 1));
    const hideCompanions = batchAt >= 0 ? [BATCH_AXIS] : [];

    const groups: TableGroup[] = groupCombos(layout, data.jobs).map((combo) => {
      const groupJobs = data.jobs.filter((j) => layout.groupAxes.every((a) => j.labels[a] === combo[a]));
      const rows = rowLabels.map((label): TableRow => {
        const labels: Record<string, string> = { ...combo };
        if (rowsAxis) labels[rowsAxis] = label;
        const rowBaseline = !columnsAxis && matchesBaseline(layout, labels, [...layout.groupAxes, ...(rowsAxis ? [rowsAxis] : [])]);
        const cells = columns.map((col) => {
          if (columnsAxis && col.columnLabel !== undefined) {
            const full = { ...labels, [columnsAxis]: col.columnLabel };
            return this.cell(full, col, matchesBaseline(layout, full, layout.cellAxes));
          }
          return this.cell(labels, col, rowBaseline);
        });
        return { label: rowsAxis ? label : data.row.name, companions: rowsAxis ? companionText(layout, label, hideCompanions) : '', labels, baseline: rowBaseline, cells, n: columnsAxis ? null : rowN(this.jobsAt(labels)) };
      });
      return { labels: combo, title: describeLabels(combo), rows, fixed: fixedByBudget(groupJobs) };
    });

    const notes: string[] = [...layout.warnings];
    if (columnsAxis) notes.push(`Grid of ${metric}: rows ${rowsAxis}, columns ${columnsAxis}.`);
    for (const axis of layout.companions.keys()) {
      notes.push(`${axis} varies together with ${rowsAxis} (a zip), shown ${hideCompanions.includes(axis) ? 'in the batch column' : 'beside each row'}.`);
    }
    for (const [axis, map] of layout.columnCompanions) {
      notes.push(`${axis} varies together with ${columnsAxis} (a zip): ${[...map].map(([c, v]) => `${c} -> ${v}`).join(', ')}.`);
    }
    if (layout.groupAxes.length) notes.push(`One block per ${layout.groupAxes.join(' × ')} (not averaged over).`);
    const measures = new Set(columns.map(measureOf));
    for (const g of groups) {
      if (g.fixed?.metrics.some((m) => measures.has(m))) notes.push(`${g.title || data.row.name}: ${g.fixed.reason}.`);
    }
    notes.push(
      `Mean ± sample std over seeds; n = finished seeds${columnsAxis ? '' : ' of the row (a cell states its own n only where it differs)'}; ` +
        '"failed"/"running"/"pending" = no finished job in the cell, "—" = no job or no value.',
    );
    if (hasBaseline) notes.push(`Baseline (shaded, reference of "x" ratios): ${describeLabels(layout.report.baseline!)}.`);
    return {
      experiment: data.row.name,
      kind: columnsAxis ? 'grid' : 'list',
      rowsAxis,
      columnsAxis,
      groupAxes: layout.groupAxes,
      columns,
      groups,
      baseline: layout.report.baseline,
      notes,
    };
  }
}

const BATCH_AXIS = 'train.batch_size';

/** Indices of the columns a block shows: all but those about a quantity its budget holds fixed. */
export function shownColumns(model: TableModel, group: TableGroup): number[] {
  const fixed = new Set(group.fixed?.metrics ?? []);
  return model.columns.flatMap((c, i) => (fixed.has(measureOf(c)) ? [] : [i]));
}

/** True when every block shows the same columns (one shared header), false when some block leaves some out. */
export function uniformColumns(model: TableModel): boolean {
  return model.groups.every((g) => shownColumns(model, g).length === model.columns.length);
}

export function buildTable(data: ExperimentData, layout: Layout): TableModel {
  return new TableBuilder(data, layout).build();
}
