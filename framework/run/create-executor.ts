/** Chooses the executor of a sweep from `--executor` (local by default). */
import type { Executor } from './executor.js';
import { LocalExecutor } from './local-executor.js';

export const EXECUTOR_NAMES = ['local', 'bullmq', 'slurm'] as const;
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

export interface ExecutorOptions {
  /** bullmq: the Redis URL, e.g. redis://127.0.0.1:6379. */
  redis?: string;
  /** local: GPU ids to hand out, one job per GPU at a time. */
  gpus?: string[];
  /** local: threads each job's native kernels may use (the CPUs divided among the jobs that run at once). */
  threadsPerJob?: number;
  /** slurm: sbatch settings. */
  slurm?: { partition?: string; time?: string; cpus?: number; gpus?: number; mem?: string; extra?: string[]; workDir?: string };
  /** The experiment being run (queue names, manifests). */
  experiment: string;
}

export async function createExecutor(name: ExecutorName, options: ExecutorOptions): Promise<Executor> {
  switch (name) {
    case 'local':
      return new LocalExecutor({ gpus: options.gpus, threadsPerJob: options.threadsPerJob });
    case 'bullmq':
      if (!options.redis) throw new Error('--executor bullmq: --redis URL is required (e.g. --redis redis://127.0.0.1:6379)');
      // Loaded only when asked for: a local sweep needs neither Redis clients nor Slurm tooling.
      return (await import('./bullmq-executor.js')).BullmqExecutor.connect(options.redis, options.experiment);
    case 'slurm':
      return (await import('./slurm-executor.js')).SlurmExecutor.create(options.experiment, options.slurm ?? {});
    default:
      throw new Error(`--executor ${name}: not available; allowed: ${EXECUTOR_NAMES.join(', ')}`);
  }
}
