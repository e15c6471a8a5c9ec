/** Labels: how an axis value is written in job labels, tables and exclude/baseline matching. */

/** 0.5 and 5e-1 parse to the same number and so get the same label. */
export function labelOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
