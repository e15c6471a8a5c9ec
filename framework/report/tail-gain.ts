/**
 * How much a curve still rose at the end: the points of zero-shot top-1 gained over the last TAIL_FRACTION of
 * training (its last value minus its value, linearly interpolated, at (1 - TAIL_FRACTION) of its last step). Issue
 * 18's flattening criterion reads it from the baseline's held-out curve (baseline.ts); tables show it per cell as the
 * derived result TAIL_GAIN_RESULT, which is how a calibration is read (docs/results.md).
 *
 * Interpolation is linear, so the mean of the seeds' gains equals the gain of the seeds' mean curve when the seeds
 * share their evaluation steps, as the jobs of one cell do.
 */
import type { Curve } from './load.js';

export const TAIL_FRACTION = 0.2;
/** The derived result: a fraction like zero_shot_top1 itself, so tables show it in points. */
export const TAIL_GAIN_RESULT = 'zero_shot_top1_tail_gain';

/** Linear interpolation over (step, value) points ascending in step; null before the first point. */
export function valueAtStep(steps: readonly number[], values: readonly number[], x: number): number | null {
  if (steps.length === 0 || x < steps[0]!) return null;
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]! >= x) return values[i - 1]! + ((values[i]! - values[i - 1]!) * (x - steps[i - 1]!)) / (steps[i]! - steps[i - 1]!);
  }
  return values[values.length - 1]!;
}

/** The gain over the last TAIL_FRACTION of the steps, in the values' unit; null with under 2 points or none early enough. */
export function tailGain(steps: readonly number[], values: readonly number[]): number | null {
  if (steps.length < 2) return null;
  const from = valueAtStep(steps, values, (1 - TAIL_FRACTION) * steps[steps.length - 1]!);
  return from === null ? null : values[values.length - 1]! - from;
}

/** The derived result of one job's zero-shot curve, or null where it has none to speak of. */
export function curveTailGain(curve: Curve | undefined): number | null {
  return curve ? tailGain(curve.step, curve.value) : null;
}
