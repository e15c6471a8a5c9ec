/** What the trainer reports while it runs. It knows nothing of sweeps or storage: the caller decides where these go. */

export interface StartInfo {
  /** Backend actually used (after 'auto' and fallbacks). */
  backend: string;
  /** Device or adapter name, e.g. 'cpu (wasm simd)' or the GPU's name. */
  device: string;
  /** Planned pre-training steps (an estimate when the budget is wall-clock time). */
  total_steps: number;
  /** The step a saved resume state let this run start from (absent: it started from step 0). */
  resumed_from_step?: number;
}

export interface TrainEvents {
  onStart?(info: StartInfo): void;
  /** Per-step metrics: loss, lr, logit_scale, pairs_per_second, elapsed_seconds, samples_seen (+ reconstruction_loss). */
  onStep?(step: number, metrics: Record<string, number>): void;
  /** Evaluation metrics at a step (zero_shot_top1, ..., retrieval_t2i_r10): every eval.every steps, right before
   * unmasked tuning (at the last pre-training step), and at the end. */
  onEval?(step: number, metrics: Record<string, number>): void;
  /** Free-form progress text (data loading, tuning phase, ...). */
  onLog?(message: string): void;
}

export interface TrainResult {
  backend: string;
  device: string;
  /** Final numbers: zero_shot_top1, zero_shot_top5, retrieval_i2t_r1, retrieval_t2i_r1, train_seconds, samples_seen,
   * train_flops, peak_memory_bytes, ...; with unmasked tuning also the evaluation right before it, prefixed
   * 'pretune_' (pretune_zero_shot_top1, ..., pretune_train_seconds, pretune_steps). An evaluation-only run
   * (evaluateCheckpoint) gives the evaluation metrics and evaluated_step only. */
  results: Record<string, number>;
  /** Checkpoint directories when train() was given options.checkpointDir: 'pretrain' (end of pre-training) and
   * 'final' (after unmasked tuning; the same directory as 'pretrain' when no tuning ran). */
  artifacts?: Record<string, string>;
}

/**
 * train() stopped early because TrainOptions.stopSignal fired (SIGTERM: scancel, preemption, Ctrl-C): at a step
 * boundary, after saving a resume state when the run has them (`saved`), so that a rerun continues from `step`.
 */
export class TrainingStopped extends Error {
  constructor(readonly step: number, readonly saved: boolean) {
    super(`preempted at step ${step}, ${saved ? 'state saved: a rerun resumes from it' : 'no resume state (none for this run): a rerun starts again from step 0'}`);
    this.name = 'TrainingStopped';
  }
}

/** Thrown for a config that cannot run (unknown dataset, missing path, batch bigger than the data, ...). The message
 * names the config key, what was found and what is allowed. */
export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}
