/** Numbers and cells as text, shared by every renderer (HTML, Markdown, LaTeX, CSV). */
import type { ColumnDef, Unit } from './columns.js';
import type { Cell } from './table.js';

export function formatNumber(unit: Unit, v: number): string {
  if (!Number.isFinite(v)) return String(v);
  switch (unit) {
    case 'percent':
      return v.toFixed(1);
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

export function cellText(cell: Cell, col: ColumnDef): CellText {
  if (!cell.stat) return { value: STATUS_TEXT[cell.status], n: '' };
  const { mean, std, n } = cell.stat;
  const value = std === null ? formatNumber(col.unit, mean) : `${formatNumber(col.unit, mean)} ± ${formatNumber(col.unit, std)}`;
  if (cell.status === 'paper' || col.source.kind === 'config') return { value, n: '' };
  const parts = [cell.jobs > n ? `n=${n}/${cell.jobs}` : `n=${n}`];
  const notDone = (['failed', 'interrupted', 'running', 'pending'] as const).filter((s) => cell.counts[s] > 0);
  for (const s of notDone) parts.push(`${cell.counts[s]} ${s}`);
  return { value, n: parts.join(', ') };
}

/** 'value (n=3)' on one line, for Markdown and CSV. */
export function cellLine(cell: Cell, col: ColumnDef): string {
  const t = cellText(cell, col);
  return t.n ? `${t.value} (${t.n})` : t.value;
}
