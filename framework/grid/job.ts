/** A cell of the grid: one training run. */
import type { TrainConfig } from '../../models/index.js';
import type { Location } from '../spec/spec-error.js';

export interface Job {
  /** Position in the expanded grid (stable for a given spec). */
  index: number;
  /** Axis name -> label, e.g. {"mask.image_ratio": "0.5", "seed": "1"}. */
  labels: Record<string, string>;
  config: TrainConfig;
  /** configHash(config): the job's identity for resume. */
  hash: string;
  seed: number;
  /** Evaluation-only: the index of the job whose trained weights this one evaluates (its config differs from that
   * job's only in evaluation settings), or null for a job that trains. */
  sourceIndex: number | null;
  /** Where in the spec this cell comes from (for messages). */
  where: Location;
}
