/**
 * Pieces shared by the remote executors (BullMQ, Slurm): a job's process may start more than once for one run() call
 * (a BullMQ job picked up again after its worker died; a Slurm task requeued after a node failure), and the messages of
 * every start reach the coordinator. The runner records each step it is given, so the messages of a rerun that repeat
 * what an earlier start already reported are dropped here: every step is recorded once.
 *
 * A rerun repeats its predecessor message for message (the trainer is deterministic per seed on one backend), so the
 * k-th step message of a rerun stands for the k-th of the first start; counting messages (not step numbers) stays
 * right if a phase restarts its step numbering.
 */
import type { TrainConfig } from '../../models/index.js';
import { configHash } from '../grid/config-hash.js';
import type { JobExtras, JobOutcome } from './executor.js';
import type { JobMessage } from './messages.js';

/**
 * The identity of one run request on a remote executor (BullMQ job id, key for attaching to a Slurm task): the config
 * hash for training (where its checkpoints are saved does not change what it computes); for an evaluation of saved
 * weights, that hash with a hash of the checkpoint's path.
 */
export function jobKey(config: TrainConfig, extras: JobExtras = {}): string {
  const hash = configHash(config);
  return extras.evaluateCheckpoint === undefined ? hash : `${hash}-eval-${configHash(extras.evaluateCheckpoint).slice(0, 8)}`;
}

export class RerunFilter {
  private run: string | null = null;
  private starts = 0;
  /** The last step whose step and eval messages were forwarded: a late message of a lost process is not forwarded
   * after its successor's. A start resets it to the step it continues from (0, or its resume state's): the runner
   * drops the recorded points past that step, which the new start recomputes and reports again. */
  private forwarded = { step: 0, eval: 0 };

  constructor(private readonly forward: (message: JobMessage) => void) {}

  /** `run` identifies one start of the job process (any string unique per start); `where` names it for the log. */
  accept(run: string, message: JobMessage, where: string): void {
    if (run !== this.run) {
      if (this.run !== null) {
        this.forward({
          type: 'status',
          message: `job started again on ${where} after its previous process was lost (at step ${this.forwarded.step})`,
        });
      }
      this.run = run;
      this.starts++;
    }
    if (message.type === 'start') {
      const from = message.resumed_from_step ?? 0;
      this.forwarded = { step: from, eval: from };
    } else if (message.type === 'step' || message.type === 'eval') {
      if (message.step <= this.forwarded[message.type]) return;
      this.forwarded[message.type] = message.step;
    }
    this.forward(message);
  }

  /** How many times the job process started (1 when nothing was lost). */
  get startCount(): number {
    return this.starts;
  }
}

/** The outcome a finished job reported as a one-line text (worker logs, BullMQ failedReason). */
export function outcomeText(outcome: JobOutcome): string {
  switch (outcome.kind) {
    case 'result':
      return 'done';
    case 'error':
      return `${outcome.config ? 'config error' : 'error'}: ${outcome.message}`;
    case 'crashed':
      return `crashed: ${outcome.message}`;
    case 'aborted':
      return `stopped: ${outcome.reason}`;
    case 'interrupted':
      return `interrupted: ${outcome.reason}`;
  }
}

/** Checks an outcome that crossed a process or machine boundary (JSON from Redis or a file). */
export function isJobOutcome(value: unknown): value is JobOutcome {
  if (value === null || typeof value !== 'object') return false;
  const o = value as Record<string, unknown>;
  switch (o.kind) {
    case 'result':
      return typeof o.results === 'object' && o.results !== null && typeof o.backend === 'string' && typeof o.device === 'string';
    case 'error':
      return typeof o.message === 'string' && typeof o.config === 'boolean';
    case 'crashed':
      return typeof o.message === 'string';
    case 'aborted':
      return typeof o.reason === 'string';
    case 'interrupted':
      return typeof o.reason === 'string' && (o.requeued === undefined || typeof o.requeued === 'boolean');
    default:
      return false;
  }
}
