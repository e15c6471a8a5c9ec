/** The spec as kept with the results (experiments.spec_resolved): axes with their labels, report settings, merged spec. */
import type { ResolvedSpecRecord, AxisRecord } from '../store/types.js';
import type { ExperimentSpec } from './types.js';

export function specRecord(spec: ExperimentSpec): ResolvedSpecRecord {
  const axes: AxisRecord[] = [];
  const add = (name: string, label: string): void => {
    let axis = axes.find((a) => a.name === name);
    if (!axis) axes.push((axis = { name, labels: [] }));
    if (!axis.labels.includes(label)) axis.labels.push(label);
  };
  for (const axis of spec.axes) for (const value of axis.values) for (const [name, label] of Object.entries(value.labels)) add(name, label);
  for (const cell of spec.include) for (const [name, label] of Object.entries(cell.labels)) add(name, label);
  for (const seed of spec.seeds ?? []) add('seed', String(seed));
  return { name: spec.name, description: spec.description, file: spec.file, axes, report: spec.report, spec: spec.merged };
}
