/**
 * Sweep overhead per job: the wall time of a job as the coordinator sees it (process start, backend start-up, data
 * preparation, model construction, result writing) minus the trainer's own training and evaluation seconds.
 * Runs real one-step jobs through the local executor and records them in a temporary results database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../models/index.js';
import { ResultStore } from '../store/result-store.js';
import { LocalExecutor } from './local-executor.js';

export interface OverheadSample {
  wall_seconds: number;
  train_seconds: number;
  eval_seconds: number;
  setup_seconds: number;
  /** wall - train - eval. */
  overhead_seconds: number;
}

export async function measureOverhead(jobs = 3): Promise<OverheadSample[]> {
  const dir = mkdtempSync(join(tmpdir(), 'flip-overhead-'));
  const store = ResultStore.open(join(dir, 'r.db'));
  const executor = new LocalExecutor();
  const samples: OverheadSample[] = [];
  try {
    const experimentId = store.upsertExperiment({ name: 'overhead', description: '', spec_path: null, spec_yaml: null, spec_resolved: {} });
    for (let seed = 0; seed < jobs; seed++) {
      // The smoke experiment's data and model, one training step: what remains is the per-job cost around training.
      const config = resolveConfig({ seed, data: { train_size: 512, eval_size: 128, image_size: 16 }, model: { preset: 'tiny' }, train: { batch_size: 32, steps: 1 } });
      const [row] = store.syncJobs(experimentId, [{ cell_index: seed, config, config_hash: `overhead-${seed}`, labels: {}, seed }]);
      const t0 = performance.now();
      store.startAttempt(row.id, { host: 'bench', pid: process.pid, git_commit: null });
      const outcome = await executor.run(config, () => {}, new AbortController().signal);
      if (outcome.kind !== 'result') throw new Error(`overhead job failed: ${JSON.stringify(outcome)}`);
      store.finishJob(row.id, outcome.results, [], 1);
      const wall = (performance.now() - t0) / 1000;
      const r = outcome.results;
      samples.push({ wall_seconds: wall, train_seconds: r.train_seconds, eval_seconds: r.eval_seconds, setup_seconds: r.setup_seconds, overhead_seconds: wall - r.train_seconds - r.eval_seconds });
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return samples;
}
