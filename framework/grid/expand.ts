/**
 * Grid expansion, a pure function of the spec: the product of the axes (zip groups count as one axis), minus
 * `exclude:` matches, plus `include:` cells, times the seeds. Each cell is resolved against the trainer's defaults and
 * hashed; cells with the same resolved config collapse into the first.
 */
import { resolveConfig, type PartialTrainConfig, type TrainConfig } from '../../models/index.js';
import { setPath } from '../spec/config-paths.js';
import { cellKey, labelOf } from '../spec/label.js';
import { SpecError, type Location, type SpecProblem } from '../spec/spec-error.js';
import type { CellPattern, ExperimentSpec } from '../spec/types.js';
import { configHash } from './config-hash.js';
import type { Job } from './job.js';

interface Cell {
  labels: Record<string, string>;
  overrides: Record<string, unknown>;
  where: Location;
}

/** Cross-field checks of a resolved config (models/check-config.ts in production; injectable for tests). */
export type ConfigChecker = (config: TrainConfig) => string[];

export function expandGrid(spec: ExperimentSpec, checkConfig: ConfigChecker = () => []): Job[] {
  let cells: Cell[] = [{ labels: {}, overrides: {}, where: spec.where }];
  for (const axis of spec.axes) {
    cells = cells.flatMap((cell) =>
      axis.values.map((value) => ({
        labels: { ...cell.labels, ...value.labels },
        overrides: { ...cell.overrides, ...value.overrides },
        where: value.where,
      })),
    );
  }
  if (spec.axes.length === 0 && spec.include.length > 0) cells = [];
  cells.push(...spec.include.map((c) => ({ labels: c.labels, overrides: c.overrides, where: c.where })));

  if (spec.seeds) {
    const seeds = spec.seeds;
    cells = cells.flatMap((cell) =>
      cell.labels.seed !== undefined
        ? [{ ...cell, overrides: { ...cell.overrides, seed: Number(cell.labels.seed) } }]
        : seeds.map((seed) => ({ ...cell, labels: { ...cell.labels, seed: labelOf(seed) }, overrides: { ...cell.overrides, seed } })),
    );
  }
  cells = cells.filter((cell) => !spec.exclude.some((pattern) => matches(pattern, cell)));

  const problems: SpecProblem[] = [];
  const jobs: Job[] = [];
  const seen = new Set<string>();
  const trainers = new Map<string, number>();
  for (const cell of cells) {
    let partial = spec.base as Record<string, unknown>;
    for (const [path, value] of Object.entries(cell.overrides)) partial = setPath(partial, path, value);
    let config: TrainConfig;
    try {
      config = resolveConfig(partial as PartialTrainConfig);
    } catch (err) {
      problems.push({ where: cell.where, key: cellKey(cell.labels), message: (err as Error).message });
      continue;
    }
    for (const problem of checkConfig(config)) problems.push({ where: whereOf(problem, cell, spec), key: cellKey(cell.labels), message: problem });
    const hash = configHash(config);
    if (seen.has(hash)) continue;
    seen.add(hash);
    const training = trainingKey(config);
    const sourceIndex = trainers.get(training) ?? null;
    if (sourceIndex === null) trainers.set(training, jobs.length);
    jobs.push({ index: jobs.length, labels: cell.labels, config, hash, seed: config.seed, sourceIndex, where: cell.where });
  }
  if (problems.length > 0) throw new SpecError(dedupe(problems));
  return jobs;
}

/** Config fields that change only how trained weights are evaluated, not the weights themselves. */
const EVALUATION_ONLY_FIELDS = ['inference', 'templates', 'batch_size'] as const;

/** Jobs with the same training key train identical weights: only the first trains, the others evaluate its weights. */
export function trainingKey(config: TrainConfig): string {
  const evalPart: Record<string, unknown> = { ...config.eval };
  for (const field of EVALUATION_ONLY_FIELDS) delete evalPart[field];
  return configHash({ ...config, eval: evalPart });
}

function matches(pattern: CellPattern, cell: Cell): boolean {
  return Object.entries(pattern.labels).every(([name, label]) => cell.labels[name] === label);
}

/** A cell problem points at the spec value it is about: the axis value when the key is an axis, else the base field. */
function whereOf(problem: string, cell: Cell, spec: ExperimentSpec): Location {
  const key = problem.split(':')[0];
  if (key in cell.overrides) return cell.where;
  return spec.baseWhere.get(key) ?? cell.where;
}

/** The same problem in many cells is reported once per place. */
function dedupe(problems: SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const id = `${p.where.file}:${p.where.line}:${p.where.col}:${p.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
