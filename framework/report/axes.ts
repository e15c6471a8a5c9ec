/**
 * The axes and report settings of an experiment, from spec_resolved when the sweep stored it, otherwise inferred
 * from the jobs' labels (in cell order). Labels a job carries that the spec does not declare are appended, so that
 * no job is ever left out of a table.
 */
import type { AxisRecord, ReportSpec } from '../store/types.js';
import type { ExperimentData, JobData } from './load.js';

export const SEED_AXIS = 'seed';
export const DEFAULT_METRICS = ['zero_shot_top1', 'zero_shot_top5', 'train_seconds'];

export interface Layout {
  axes: AxisRecord[];
  /** Axes other than 'seed', in declaration order: a table cell is one combination of their labels. */
  cellAxes: string[];
  rowsAxis: string | null;
  columnsAxis: string | null;
  /** Other non-seed axes: the table gets one block (sub-header) per combination, never averaged over. */
  groupAxes: string[];
  /**
   * Axes whose label follows from the rows axis label in every job (a zip group such as mask ratio with batch size,
   * Table 1a): shown beside the row label instead of as blocks that would hold one row each.
   */
  companions: Map<string, Map<string, string>>;
  /** The same for the columns axis of a grid (Table 1d-f: batch size zipped with the mask ratio of the columns). */
  columnCompanions: Map<string, Map<string, string>>;
  report: ReportSpec;
  /** Report settings that named no axis of the experiment, said on the page rather than dropped silently. */
  warnings: string[];
}

export function resolveLayout(data: ExperimentData): Layout {
  const declared = data.resolved?.axes ?? [];
  const axes: AxisRecord[] = declared.map((a) => ({ name: a.name, labels: [...a.labels] }));
  const byName = new Map(axes.map((a) => [a.name, a]));
  for (const job of data.jobs) {
    for (const [name, label] of Object.entries(job.labels)) {
      let axis = byName.get(name);
      if (!axis) {
        axis = { name, labels: [] };
        axes.push(axis);
        byName.set(name, axis);
      }
      if (!axis.labels.includes(label)) axis.labels.push(label);
    }
  }
  const cellAxes = axes.filter((a) => a.name !== SEED_AXIS).map((a) => a.name);
  const given = data.resolved?.report;
  const report: ReportSpec = {
    rows: given?.rows ?? null,
    columns: given?.columns ?? null,
    metrics: given?.metrics?.length ? [...given.metrics] : [...DEFAULT_METRICS],
    baseline: given?.baseline ?? null,
    paper: given?.paper ?? null,
  };
  const rowsAxis = report.rows && byName.has(report.rows) ? report.rows : (cellAxes[0] ?? null);
  const columnsAxis = report.columns && report.columns !== rowsAxis && byName.has(report.columns) ? report.columns : null;
  const others = cellAxes.filter((a) => a !== rowsAxis && a !== columnsAxis);
  const companions = rowsAxis ? findCompanions(data.jobs, rowsAxis, others) : new Map<string, Map<string, string>>();
  const columnCompanions = columnsAxis ? findCompanions(data.jobs, columnsAxis, others.filter((a) => !companions.has(a))) : new Map<string, Map<string, string>>();
  const groupAxes = others.filter((a) => !companions.has(a) && !columnCompanions.has(a));
  const warnings: string[] = [];
  const known = cellAxes.join(', ') || 'none';
  if (report.rows && report.rows !== rowsAxis) warnings.push(`report.rows is "${report.rows}", which is not an axis (axes: ${known}); rows use ${rowsAxis ?? 'no axis'}.`);
  if (report.columns && report.columns !== columnsAxis) warnings.push(`report.columns is "${report.columns}", which is not a second axis (axes: ${known}); no grid is drawn.`);
  for (const [axis, label] of Object.entries(report.baseline ?? {})) {
    const a = byName.get(axis);
    if (!a) warnings.push(`report.baseline names "${axis}", which is not an axis (axes: ${known}).`);
    else if (!a.labels.includes(label)) warnings.push(`report.baseline ${axis} = "${label}" is not one of its labels (${a.labels.join(', ')}).`);
  }
  return { axes, cellAxes, rowsAxis, columnsAxis, groupAxes, companions, columnCompanions, report, warnings };
}

/** Axes that take exactly one label per rows-axis label across the jobs, and more than one label overall. */
function findCompanions(jobs: readonly JobData[], rowsAxis: string, candidates: readonly string[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const axis of candidates) {
    const map = new Map<string, string>();
    let ok = true;
    for (const j of jobs) {
      const row = j.labels[rowsAxis];
      const label = j.labels[axis];
      if (row === undefined || label === undefined) continue;
      const seen = map.get(row);
      if (seen === undefined) map.set(row, label);
      else if (seen !== label) {
        ok = false;
        break;
      }
    }
    if (ok && new Set(map.values()).size > 1) out.set(axis, map);
  }
  return out;
}

/** The labels with the companions of their rows (and columns) label filled in (and overridden: a baseline row brings
 * its own). */
export function withCompanions(layout: Layout, labels: Record<string, string>): Record<string, string> {
  const out = { ...labels };
  for (const [axis, followed] of [[layout.rowsAxis, layout.companions], [layout.columnsAxis, layout.columnCompanions]] as const) {
    const value = axis ? labels[axis] : undefined;
    if (value === undefined) continue;
    for (const [companion, map] of followed) {
      const label = map.get(value);
      if (label !== undefined) out[companion] = label;
    }
  }
  return out;
}

/** ' (train.batch_size = 128)' for a row whose zip companions are known; '' otherwise. */
export function companionText(layout: Layout, rowLabel: string, except: readonly string[] = []): string {
  const parts = [...layout.companions].flatMap(([axis, map]) => (map.has(rowLabel) && !except.includes(axis) ? [`${axis} = ${map.get(rowLabel)}`] : []));
  return parts.length ? parts.join(', ') : '';
}

export function axisLabels(layout: Layout, name: string | null): string[] {
  if (name === null) return [];
  return layout.axes.find((a) => a.name === name)?.labels ?? [];
}

/** Identity of a cell: the labels of every non-seed axis (seeds of one cell are aggregated). */
export function cellKey(layout: Layout, labels: Record<string, string | undefined>): string {
  return JSON.stringify(layout.cellAxes.map((a) => labels[a] ?? null));
}

export function indexCells(layout: Layout, jobs: readonly JobData[]): Map<string, JobData[]> {
  const cells = new Map<string, JobData[]>();
  for (const job of jobs) {
    const key = cellKey(layout, job.labels);
    const list = cells.get(key);
    if (list) list.push(job);
    else cells.set(key, [job]);
  }
  return cells;
}

/**
 * Group combinations that occur in the jobs, ordered by the declaration order of their labels. With no jobs at all
 * (nothing planned yet), every declared combination, so the table still shows its empty cells.
 */
export function groupCombos(layout: Layout, jobs: readonly JobData[]): Record<string, string>[] {
  if (layout.groupAxes.length === 0) return [{}];
  if (jobs.length === 0) {
    let combos: Record<string, string>[] = [{}];
    for (const a of layout.groupAxes) combos = combos.flatMap((c) => axisLabels(layout, a).map((l) => ({ ...c, [a]: l })));
    return combos;
  }
  const seen = new Map<string, Record<string, string>>();
  for (const job of jobs) {
    const combo: Record<string, string> = {};
    for (const a of layout.groupAxes) combo[a] = job.labels[a] ?? '';
    seen.set(JSON.stringify(layout.groupAxes.map((a) => combo[a])), combo);
  }
  const rank = (axis: string, label: string): number => axisLabels(layout, axis).indexOf(label);
  return [...seen.values()].sort((x, y) => {
    for (const a of layout.groupAxes) {
      const d = rank(a, x[a]!) - rank(a, y[a]!);
      if (d !== 0) return d;
    }
    return 0;
  });
}

export function describeLabels(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k} = ${v}`).join(', ');
}
