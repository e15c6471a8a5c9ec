/**
 * Which training steps a job's curves record. The trainer reports every step; storing all of them made the suite's
 * database grow by ~6 rows per step (82 MB for 134 jobs of ~1,500 steps), and a plot or a table needs a few hundred
 * points. A job records about MAX_STEP_POINTS evenly spaced steps of its planned length, plus its first step and its
 * last (the runner keeps the last one aside until the job ends). Evaluation points (zero-shot, retrieval) are always
 * recorded, whatever their step: the curves of Figure 1 and the report's convergence check are made of them.
 *
 * The rule depends on the step number alone (for a given plan), so a resumed run records the same steps as an
 * uninterrupted one. A time-budgeted job plans its length from an estimate of its speed; if it runs more steps than
 * planned, it records proportionally more points.
 */
export const MAX_STEP_POINTS = 500;

export class CurveSampling {
  readonly stride: number;

  constructor(plannedSteps: number) {
    this.stride = Math.max(1, Math.ceil(plannedSteps / MAX_STEP_POINTS));
  }

  /** Is this training step one of the recorded ones? */
  records(step: number): boolean {
    return step === 1 || step % this.stride === 0;
  }
}
