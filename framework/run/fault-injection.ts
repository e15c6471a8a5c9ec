/**
 * Faults injected into a job process for the reliability tests, through the environment:
 *   FLIP_SWEEP_FAULT=crash@3   the process exits abruptly when step 3 is reported
 *   FLIP_SWEEP_FAULT=hang@3    it stops responding at step 3 (for --job-timeout)
 *   FLIP_SWEEP_FAULT=nan@3     the loss reported at step 3 is NaN (as a diverging run would)
 * Unset in normal use; nothing else reads it.
 */
export interface Fault {
  kind: 'crash' | 'hang' | 'nan';
  step: number;
}

export function faultFromEnv(env: NodeJS.ProcessEnv = process.env): Fault | null {
  const text = env.FLIP_SWEEP_FAULT;
  if (!text) return null;
  const match = /^(crash|hang|nan)@(\d+)$/.exec(text);
  if (!match) throw new Error(`FLIP_SWEEP_FAULT: found "${text}"; allowed: crash@STEP, hang@STEP or nan@STEP`);
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
