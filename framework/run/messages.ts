/** Messages a job process sends to its coordinator (over the Node IPC channel of a forked child). */

export type JobMessage =
  /** resumed_from_step: the step of the resume state this start continues from (absent: from step 0). */
  | { type: 'start'; backend: string; device: string; total_steps: number; resumed_from_step?: number }
  | { type: 'step'; step: number; metrics: Record<string, number> }
  | { type: 'eval'; step: number; metrics: Record<string, number> }
  | { type: 'log'; message: string }
  /** From an executor rather than the trainer (queued, resubmitted, attached...): shown to the user. */
  | { type: 'status'; message: string }
  | { type: 'result'; backend: string; device: string; results: Record<string, number>; artifacts?: Record<string, string> }
  /** Training stopped early on SIGTERM (models' TrainingStopped): `saved`, a resume state at `step` for the rerun. */
  | { type: 'interrupted'; step: number; saved: boolean; message: string }
  /** `config: true` for a config the trainer refused before training (retrying cannot help). */
  | { type: 'error'; message: string; config: boolean };

/** What the coordinator sends to start the job. */
export interface JobRequest {
  type: 'run';
  config: unknown;
  /** Save checkpoints of the trained weights here. */
  checkpoint_dir?: string;
  /** Evaluation only: load the weights from this checkpoint instead of training. */
  evaluate_checkpoint?: string;
}
