/**
 * Cells of a grid picked by their labels, for `sweep --rerun`: a pattern "AXIS=LABEL[,AXIS=LABEL...]" selects the
 * jobs whose labels match every pair ("seed" is an axis like the others). A pattern that names an axis or a label the
 * grid does not have is an error that lists what it has, so a typo cannot silently select nothing.
 */
import type { Job } from './job.js';

export class SelectionError extends Error {}

/** Grid positions of the jobs that match at least one pattern, in grid order. */
export function selectJobs(jobs: readonly Job[], patterns: readonly string[]): number[] {
  const labelsByAxis = new Map<string, Set<string>>();
  for (const job of jobs) {
    for (const [axis, label] of Object.entries(job.labels)) {
      if (!labelsByAxis.has(axis)) labelsByAxis.set(axis, new Set());
      labelsByAxis.get(axis)!.add(label);
    }
  }
  const selected = new Set<number>();
  for (const pattern of patterns) {
    const pairs = parsePattern(pattern, labelsByAxis);
    const matching = jobs.filter((job) => pairs.every(([axis, label]) => job.labels[axis] === label));
    if (matching.length === 0) throw new SelectionError(`--rerun ${pattern}: no job of the grid has all these labels`);
    for (const job of matching) selected.add(job.index);
  }
  return [...selected].sort((a, b) => a - b);
}

function parsePattern(pattern: string, labelsByAxis: Map<string, Set<string>>): [string, string][] {
  const axes = [...labelsByAxis.keys()];
  const pairs = pattern.split(',').map((part) => part.trim());
  if (pairs.some((p) => p.indexOf('=') <= 0)) {
    const example = axes.length ? `${axes[0]}=${[...labelsByAxis.get(axes[0]!)!][0]}` : 'seed=0';
    throw new SelectionError(`--rerun ${pattern}: expected AXIS=LABEL[,AXIS=LABEL...], e.g. --rerun ${example}`);
  }
  return pairs.map((part) => {
    const eq = part.indexOf('=');
    const axis = part.slice(0, eq).trim();
    const label = part.slice(eq + 1).trim();
    const labels = labelsByAxis.get(axis);
    if (!labels) throw new SelectionError(`--rerun ${pattern}: the grid has no axis "${axis}"; its axes: ${axes.join(', ')}`);
    if (!labels.has(label)) throw new SelectionError(`--rerun ${pattern}: axis "${axis}" has no label "${label}"; its labels: ${[...labels].join(', ')}`);
    return [axis, label] as [string, string];
  });
}
