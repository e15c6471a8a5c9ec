/**
 * Checks before any training starts that each distinct data setting of the grid can be loaded (a missing folder, a
 * corrupt image, Fashion-MNIST not installed): one bad path must not surface only hours into a sweep.
 */
import { ConfigError, loadDataset } from '../../models/index.js';
import { cellKey } from '../spec/label.js';
import type { SpecProblem } from '../spec/spec-error.js';
import type { ExperimentSpec } from '../spec/types.js';
import { canonicalJson } from './config-hash.js';
import type { Job } from './job.js';

export async function preflightData(spec: ExperimentSpec, jobs: Job[]): Promise<SpecProblem[]> {
  const problems: SpecProblem[] = [];
  const seen = new Set<string>();
  for (const job of jobs) {
    const key = canonicalJson(job.config.data);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await loadDataset(job.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const where = spec.baseWhere.get(err.key) ?? job.where;
      problems.push({ where, key: cellKey(job.labels), message: err.message });
    }
  }
  return problems;
}
