/**
 * Is the suite's baseline trained far enough for FLIP's effects to show (issue 18)? Read from the baseline's
 * held-out zero-shot curve (eval.every points): it has flattened (the last 20% of training adds under 1 point) and
 * zero-shot is not saturated (final top-1 between 30% and 90%, top-5 under 99%).
 *
 * The baseline is the mask-0 training without a time budget: in a dedicated experiment when the database has one
 * (BASELINE_SOURCES, in order), else the mask-0 rows of ablation-a's equal-epochs block.
 */
import { describeLabels } from './axes.js';
import type { ExperimentData, JobData } from './load.js';
import { getPath, summarize } from './stats.js';
import { TAIL_FRACTION, tailGain as gainOverTail } from './tail-gain.js';

export const BASELINE_SOURCES = ['flip-base', 'ablation-a'];
export const CONVERGENCE = { tailFraction: TAIL_FRACTION, maxTailGainPoints: 1, top1Range: [30, 90] as const, maxTop5: 99 };
const CURVE = 'zero_shot_top1';

export interface BaselineCheck {
  converged: boolean;
  /** The experiment the baseline was read from; null when none qualified. */
  experiment: string | null;
  /** Which jobs ('mask.image_ratio = 0, budget = epochs'). */
  selection: string;
  seeds: number;
  /** Zero-shot top-1 points gained over the last 20% of training steps (mean curve over seeds). */
  tail_gain: number | null;
  /** Final zero-shot top-1 / top-5 in %, mean over seeds. */
  top1: number | null;
  top5: number | null;
  /** Each criterion that failed or could not be checked; empty when converged. */
  problems: string[];
}

function isBaselineJob(job: JobData): boolean {
  if (job.status !== 'done') return false;
  const label = job.labels['mask.image_ratio'];
  const ratio = label !== undefined ? Number(label) : ((getPath(job.config, 'mask.image_ratio') as number | undefined) ?? 0);
  const timeBudget = getPath(job.config, 'train.time_budget_s');
  return ratio === 0 && (timeBudget === null || timeBudget === undefined) && (job.curves.get(CURVE)?.step.length ?? 0) >= 2;
}

/** The seeds' mean zero-shot curve (%) over the evaluation steps every seed has. */
function meanCurve(jobs: readonly JobData[]): { steps: number[]; values: number[] } {
  const curves = jobs.map((j) => j.curves.get(CURVE)!);
  const common = curves.slice(1).reduce((set, c) => new Set(c.step.filter((s) => set.has(s))), new Set(curves[0]!.step));
  const steps = [...common].sort((a, b) => a - b);
  const values = steps.map((s) => (curves.reduce((a, c) => a + c.value[c.step.indexOf(s)]!, 0) / curves.length) * 100);
  return { steps, values };
}

function finalMean(jobs: readonly JobData[], name: string): number | null {
  const s = summarize(jobs.flatMap((j) => {
    const v = j.results.get(name);
    return typeof v === 'number' && Number.isFinite(v) ? [v * 100] : [];
  }));
  return s ? s.mean : null;
}

export function checkBaseline(experiment: (name: string) => ExperimentData | null): BaselineCheck {
  let data: ExperimentData | null = null;
  let jobs: JobData[] = [];
  for (const name of BASELINE_SOURCES) {
    const d = experiment(name);
    const selected = d ? d.jobs.filter(isBaselineJob) : [];
    if (selected.length) {
      data = d;
      jobs = selected;
      break;
    }
  }
  if (!data) {
    return {
      converged: false, experiment: null, selection: 'none', seeds: 0, tail_gain: null, top1: null, top5: null,
      problems: [`no finished mask-0 job without a time budget and with an evaluation curve (eval.every > 0) in ${BASELINE_SOURCES.join(' or ')}`],
    };
  }
  const cellLabels = [...new Set(jobs.map((j) => describeLabels(Object.fromEntries(Object.entries(j.labels).filter(([a]) => a !== 'seed')))))];
  const problems: string[] = [];
  const { steps, values } = meanCurve(jobs);
  let tailGain: number | null = null;
  if (steps.length < 2) problems.push(`the seeds share ${steps.length} evaluation step(s); the curve needs at least 2`);
  else {
    const last = steps[steps.length - 1]!;
    tailGain = gainOverTail(steps, values);
    if (tailGain === null) problems.push(`the first evaluation (step ${steps[0]}) comes after ${(1 - CONVERGENCE.tailFraction) * 100}% of training (step ${last}); lower eval.every`);
    else if (!(tailGain < CONVERGENCE.maxTailGainPoints)) problems.push(`the last ${CONVERGENCE.tailFraction * 100}% of training adds ${tailGain.toFixed(2)} points of zero-shot top-1 (must be under ${CONVERGENCE.maxTailGainPoints})`);
  }
  const top1 = finalMean(jobs, 'zero_shot_top1');
  const top5 = finalMean(jobs, 'zero_shot_top5');
  const [lo, hi] = CONVERGENCE.top1Range;
  if (top1 === null) problems.push('no zero_shot_top1 result');
  else if (top1 < lo || top1 > hi) problems.push(`zero-shot top-1 is ${top1.toFixed(1)}% (must be between ${lo}% and ${hi}%)`);
  if (top5 === null) problems.push('no zero_shot_top5 result');
  else if (!(top5 < CONVERGENCE.maxTop5)) problems.push(`zero-shot top-5 is ${top5.toFixed(1)}% (must be under ${CONVERGENCE.maxTop5}%)`);
  return {
    converged: problems.length === 0,
    experiment: data.row.name,
    selection: cellLabels.join('; ') || 'all jobs',
    seeds: jobs.length,
    tail_gain: tailGain,
    top1,
    top5,
    problems,
  };
}
