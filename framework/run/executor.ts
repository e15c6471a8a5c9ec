/** Where jobs run. The runner owns scheduling and storage; an executor only runs one job and reports its messages. */
import type { TrainConfig } from '../../models/index.js';
import type { JobMessage } from './messages.js';

export type JobOutcome =
  | { kind: 'result'; backend: string; device: string; results: Record<string, number>; artifacts?: Record<string, string> }
  /** The trainer reported an error (config: a config the trainer refused, not worth retrying). */
  | { kind: 'error'; message: string; config: boolean }
  /** The job process died without reporting (crash, kill, out of memory). */
  | { kind: 'crashed'; message: string }
  /** The job stopped on a SIGTERM that did not come through the abort signal (Slurm's scancel --signal, preemption,
   * time limit); its resume state lets a rerun continue. `requeued`: Slurm runs the task again (not the outcome yet). */
  | { kind: 'interrupted'; reason: string; requeued?: boolean }
  /** Stopped through the abort signal (timeout or Ctrl-C); the reason is the signal's. */
  | { kind: 'aborted'; reason: string };

/**
 * The abort reason of a job stopped for running past --job-timeout. Executors give it a short grace before killing:
 * a job past its limit is most likely hung (a blocked event loop cannot even save its state), while a user's stop or a
 * preemption gets the full grace to save. String(reason) is the message.
 */
export class JobTimedOut {
  constructor(readonly message: string) {}
  toString(): string {
    return this.message;
  }
}

/** Besides the config: where the job saves its checkpoints, or (evaluation only) which checkpoint it evaluates. */
export interface JobExtras {
  checkpointDir?: string;
  evaluateCheckpoint?: string;
}

export interface Executor {
  readonly name: string;
  run(config: TrainConfig, onMessage: (message: JobMessage) => void, signal: AbortSignal, extras?: JobExtras): Promise<JobOutcome>;
  /** Releases connections (Redis) once the sweep is over. */
  close?(): Promise<void>;
}
