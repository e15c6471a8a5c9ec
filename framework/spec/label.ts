/** Labels: how an axis value is written in job labels, tables and exclude/baseline matching. */

/** 0.5 and 5e-1 parse to the same number and so get the same label. */
/** "mask.image_ratio=0.5 seed=1" for progress lines and plans; "(base)" for the cell of a spec without axes. */
export function labelsText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? parts.join(' ') : '(base)';
}

/** "cell {mask.image_ratio=0.5, seed=1}" (or "base") as the key of a problem found in one cell. */
export function cellKey(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? `cell {${parts.join(', ')}}` : 'base';
}

export function labelOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
