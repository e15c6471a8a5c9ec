/** Numbers and cells as text, shared by every renderer (HTML, Markdown, LaTeX, CSV). */
import type { ColumnDef, Unit } from './columns.js';
import type { Cell } from './table.js';

export function formatNumber(unit: Unit, v: number): string {
  if (!Number.isFinite(v)) return String(v);
  switch (unit) {
    case 'percent':
      return v.toFixed(1);
    case 'points':
      return `${v > 0 ? '+' : ''}${v.toFixed(2)}`;
    case 'ratio':
      return `${v.toFixed(2)}x`;
    case 'seconds':
      return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
    case 'mib':
      return v.toFixed(1);
    case 'count':
      return Number.isInteger(v) ? String(v) : v.toFixed(1);
    case 'flops':
      return v === 0 ? '0' : v.toExponential(2).replace('e+', 'e');
    case 'loss':
      return v.toFixed(3);
    case 'number':
      return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  }
}

/** Mean ± std with the std at the mean's precision (so seconds read '100 ± 3', not '100 ± 3.21'). */
export function formatStat(unit: Unit, mean: number, std: number | null): string {
  const m = formatNumber(unit, mean);
  if (std === null) return m;
  if (unit === 'seconds') {
    const digits = Math.abs(mean) >= 100 ? 0 : Math.abs(mean) >= 10 ? 1 : 2;
    return `${m} ± ${std.toFixed(digits)}`;
  }
  if (unit === 'ratio' || unit === 'points') return `${m} ± ${std.toFixed(2)}`;
  return `${m} ± ${formatNumber(unit, std)}`;
}

const STATUS_TEXT: Record<Cell['status'], string> = {
  ok: '',
  paper: '',
  failed: 'failed',
  interrupted: 'interrupted',
  running: 'running',
  pending: 'pending',
  missing: '—',
  'no-value': '—',
};

export interface CellText {
  /** '69.6 ± 0.4', '0.50x', 'failed', '—'. */
  value: string;
  /** 'n=3', 'n=2/3, 1 failed'; '' where a count means nothing (config values, paper numbers). */
  n: string;
}

/** `rowDone`: the n already shown for the whole row; a cell with that n (and no other status) omits its own. */
export function cellText(cell: Cell, col: ColumnDef, rowDone?: number): CellText {
  if (!cell.stat) return { value: STATUS_TEXT[cell.status], n: '' };
  const { mean, std, n } = cell.stat;
  const value = formatStat(col.unit, mean, std);
  if (cell.status === 'paper' || col.source.kind === 'config') return { value, n: '' };
  if (rowDone !== undefined && n === rowDone) return { value, n: '' };
  const parts = [cell.jobs > n ? `n=${n}/${cell.jobs}` : `n=${n}`];
  const notDone = (['failed', 'interrupted', 'running', 'pending'] as const).filter((s) => cell.counts[s] > 0);
  for (const s of notDone) parts.push(`${cell.counts[s]} ${s}`);
  return { value, n: parts.join(', ') };
}

/** 'value (n=3)' on one line, for Markdown and CSV. */
export function cellLine(cell: Cell, col: ColumnDef, rowDone?: number): string {
  const t = cellText(cell, col, rowDone);
  return t.n ? `${t.value} (${t.n})` : t.value;
}
