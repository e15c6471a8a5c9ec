/**
 * What a block of a table holds fixed by design: when every job of the block trains under the same single budget,
 * the quantity that budget sets is the same in every row, so a column of it (or of its ratio to the baseline) says
 * nothing there. Equal-time blocks fix train_seconds (the paper's equal-time comparison: a relative wall-clock
 * column would read 1.00x everywhere); equal-epochs and equal-samples blocks fix samples_seen.
 */
import type { JobData } from './load.js';
import { getPath } from './stats.js';

export interface FixedByBudget {
  /** Result names the budget fixes. */
  metrics: string[];
  /** Why, for the note under the table. */
  reason: string;
}

const BUDGETS = ['steps', 'samples', 'epochs', 'time_budget_s'] as const;

function numberAt(config: unknown, path: string): number | null {
  const v = getPath(config, path);
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** 'time_budget_s=60' when exactly one budget is set ('epochs' also depends on the data size); null otherwise. */
function budgetOf(config: unknown): { key: (typeof BUDGETS)[number]; signature: string; value: number } | null {
  const set = BUDGETS.flatMap((k) => {
    const v = numberAt(config, `train.${k}`);
    return v === null ? [] : [{ key: k, value: v }];
  });
  if (set.length !== 1) return null;
  const { key, value } = set[0]!;
  const signature = key === 'epochs' ? `epochs=${value}, train_size=${numberAt(config, 'data.train_size')}` : `${key}=${value}`;
  return { key, signature, value };
}

export function fixedByBudget(jobs: readonly JobData[]): FixedByBudget | null {
  if (jobs.length < 2) return null;
  const budgets = jobs.map((j) => budgetOf(j.config));
  const first = budgets[0];
  if (!first || budgets.some((b) => b === null || b.signature !== first.signature)) return null;
  switch (first.key) {
    case 'time_budget_s':
      return { metrics: ['train_seconds'], reason: `every job trains for the same ${first.value} s (train.time_budget_s), so train time and its ratio are left out` };
    case 'epochs':
      return { metrics: ['samples_seen'], reason: `every job sees the same ${first.value} epochs of the same data, so samples seen is left out` };
    case 'samples':
      return { metrics: ['samples_seen'], reason: `every job sees the same ${first.value} samples (train.samples), so samples seen is left out` };
    case 'steps':
      return { metrics: ['steps'], reason: `every job runs the same ${first.value} steps (train.steps), so steps is left out` };
  }
}
