/**
 * Faults injected into a job process for the reliability tests, through the environment:
 *   FLIP_SWEEP_FAULT=crash@3   the process exits abruptly when step 3 is reported
 *   FLIP_SWEEP_FAULT=hang@3    it stops responding at step 3 (for --job-timeout)
 *   FLIP_SWEEP_FAULT=nan@3     the loss reported at step 3 is NaN (as a diverging run would)
 *   FLIP_SWEEP_FAULT=nan@3,seed=1   the same, only in jobs whose config has seed 1
 * and into the coordinator:
 *   FLIP_SWEEP_COORDINATOR_FAULT=kill-after-job@2       SIGKILL itself right after recording the 2nd finished job
 *   FLIP_SWEEP_COORDINATOR_FAULT=kill-while-writing@2   SIGKILL itself inside the transaction writing the 2nd result
 * Unset in normal use; nothing else reads them.
 */
export interface Fault {
  kind: 'crash' | 'hang' | 'nan';
  step: number;
}

/** The fault for a job with this seed, if any. */
export function faultFromEnv(seed: number, env: NodeJS.ProcessEnv = process.env): Fault | null {
  const text = env.FLIP_SWEEP_FAULT;
  if (!text) return null;
  const match = /^(crash|hang|nan)@(\d+)(?:,seed=(\d+))?$/.exec(text);
  if (!match) throw new Error(`FLIP_SWEEP_FAULT: found "${text}"; allowed: crash@STEP, hang@STEP or nan@STEP, optionally followed by ,seed=N`);
  if (match[3] !== undefined && Number(match[3]) !== seed) return null;
  return { kind: match[1] as Fault['kind'], step: Number(match[2]) };
}

/** Applies the fault when its step is reported; otherwise returns the metrics unchanged. */
export function applyFault(fault: Fault | null, step: number, metrics: Record<string, number>): Record<string, number> {
  if (!fault || step !== fault.step) return metrics;
  if (fault.kind === 'crash') process.kill(process.pid, 'SIGKILL');
  if (fault.kind === 'hang') {
    const until = Date.now() + 3_600_000;
    while (Date.now() < until) {
      // busy: a hung kernel does not yield either
    }
  }
  // What the trainer does on a diverged loss: stop with an error naming the step.
  throw new Error(`non-finite loss at step ${step} (NaN)`);
}

export interface CoordinatorFault {
  kind: 'kill-after-job' | 'kill-while-writing';
  /** 1-based count of jobs finished by this coordinator. */
  job: number;
}

export function coordinatorFaultFromEnv(env: NodeJS.ProcessEnv = process.env): CoordinatorFault | null {
  const text = env.FLIP_SWEEP_COORDINATOR_FAULT;
  if (!text) return null;
  const match = /^(kill-after-job|kill-while-writing)@(\d+)$/.exec(text);
  if (!match) throw new Error(`FLIP_SWEEP_COORDINATOR_FAULT: found "${text}"; allowed: kill-after-job@N or kill-while-writing@N`);
  return { kind: match[1] as CoordinatorFault['kind'], job: Number(match[2]) };
}

/** As abrupt as a power cut, for this process: no handlers run. */
export function killNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
