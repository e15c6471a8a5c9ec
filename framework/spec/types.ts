/** A spec after parsing, `extends:`, `--set` and validation: what grid expansion works from. */
import type { PartialTrainConfig } from '../../models/index.js';
import type { ReportSpec } from '../store/types.js';
import type { Location } from './spec-error.js';

/** One value of an axis: the labels it gives the cell and the config values it sets. */
export interface AxisValue {
  /** Axis name -> label, e.g. {"mask.image_ratio": "0.5"}; a zip group gives one entry per path. */
  labels: Record<string, string>;
  /** Config path -> value, e.g. {"mask.image_ratio": 0.5}. */
  overrides: Record<string, unknown>;
  where: Location;
}

/** An axis of the product: a config path, a group of named variants, or a zip group (several paths at once). */
export interface Axis {
  /** The label keys this axis sets: [path], [variant group name] or the zip group's paths. */
  names: string[];
  values: AxisValue[];
}

/** An extra cell (`include:`) or a pattern of cells to drop (`exclude:`). */
export interface CellPattern {
  /** Axis name -> label. */
  labels: Record<string, string>;
  overrides: Record<string, unknown>;
  where: Location;
}

export interface ExperimentSpec {
  name: string;
  description: string;
  /** The spec file given on the command line. */
  file: string;
  /** That file's text, as written. */
  text: string;
  base: PartialTrainConfig;
  axes: Axis[];
  include: CellPattern[];
  exclude: CellPattern[];
  /** null: no seed axis, every cell runs with base.seed. */
  seeds: number[] | null;
  report: ReportSpec;
  /** The spec's `run:` section (flags override it). */
  run: RunSettings;
  /** The merged spec as plain data (after extends and --set), kept with the results. */
  merged: Record<string, unknown>;
  /** Where each base field was written, for messages about cells. */
  baseWhere: Map<string, Location>;
  where: Location;
}

/** A spec's `run:` section, as written (all optional). */
export interface RunSettings {
  executor?: 'local' | 'bullmq' | 'slurm';
  concurrency?: number;
  retries?: number;
  job_timeout_s?: number;
  redis?: string;
  gpus?: (number | string)[];
  slurm?: { partition?: string; time?: string; cpus?: number; gpus?: number; mem?: string; sbatch_args?: string[] };
}
