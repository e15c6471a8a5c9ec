/** `npm run sweep -- SPEC [flags]`: validate a spec, expand its grid, and run (or, with --dry-run, list) its jobs. */
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkConfig, estimateTrainCost } from '../../models/index.js';
import { expandGrid } from '../grid/expand.js';
import { preflightData } from '../grid/preflight.js';
import type { Job } from '../grid/job.js';
import { SelectionError, selectJobs } from '../grid/select-jobs.js';
import { createExecutor, EXECUTOR_NAMES, type ExecutorName } from '../run/create-executor.js';
import { LogProgress, TerminalProgress } from '../run/progress.js';
import { Sweep } from '../run/runner.js';
import { STOP_GRACE_MS } from '../run/local-executor.js';
import { loadSpec } from '../spec/load-spec.js';
import { labelsText } from '../spec/label.js';
import { SpecError } from '../spec/spec-error.js';
import { specRecord } from '../spec/spec-record.js';
import { DEFAULT_DB, EXIT, fail, gitCommit, intFlag, openStore, parseCli } from './common.js';

const USAGE = `usage: npm run sweep -- SPEC.yaml [options]

  --dry-run              print the expanded grid (labels, hash, cost estimate) and change nothing
  --set PATH=VALUE       override a base config field, e.g. --set train.steps=50 (repeatable)
  --db PATH              results database (default ${DEFAULT_DB})
  --concurrency N        jobs at once (default: one per CPU core, here ${availableParallelism()})
  --retries N            extra attempts for a failed job (default 1)
  --job-timeout SECONDS  stop and fail a job that runs longer
  --wait                 wait for jobs another live sweep of this experiment runs (and run those it leaves not
                         done) instead of exiting with code 3 without them
  --rerun AXIS=LABEL[,AXIS=LABEL...]
                         run the matching jobs again from scratch even if done (their records are replaced), e.g.
                         --rerun mask.image_ratio=0.5,seed=1 after a run disturbed by other load (repeatable)
  --no-copy              train every job, even one whose identical job (same config) another experiment in the
                         database has done (by default its record is copied: one training per config)
  --plain                plain log lines even on a terminal
  --executor NAME        where jobs run: ${EXECUTOR_NAMES.join(', ')} (default local)
  --redis URL            bullmq: the Redis server, e.g. redis://127.0.0.1:6379
  --gpus 0,1,...         local: one job per listed GPU at a time
  --partition P --time T --cpus N --gpus-per-task N --mem M --sbatch-arg ARG   slurm: sbatch settings`;

const args = parseCli('sweep', USAGE, {
  'dry-run': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  db: { type: 'string' },
  concurrency: { type: 'string' },
  retries: { type: 'string' },
  'job-timeout': { type: 'string' },
  wait: { type: 'boolean' },
  'no-copy': { type: 'boolean' },
  rerun: { type: 'string', multiple: true },
  plain: { type: 'boolean' },
  executor: { type: 'string' },
  redis: { type: 'string' },
  gpus: { type: 'string' },
  partition: { type: 'string' },
  time: { type: 'string' },
  cpus: { type: 'string' },
  'gpus-per-task': { type: 'string' },
  mem: { type: 'string' },
  'sbatch-arg': { type: 'string', multiple: true },
});
if (args.values.help) fail(USAGE, EXIT.ok);
if (args.positionals.length !== 1) fail(`sweep: expected one spec file, found ${args.positionals.length}\n\n${USAGE}`, EXIT.invalid);

let spec;
let jobs: Job[];
try {
  spec = loadSpec(args.positionals[0], { set: args.values.set });
  jobs = expandGrid(spec, checkConfig);
  const dataProblems = await preflightData(spec, jobs);
  if (dataProblems.length > 0) throw new SpecError(dataProblems);
} catch (err) {
  if (err instanceof SpecError) {
    const n = err.problems.length;
    fail(`Invalid spec: ${n} problem${n === 1 ? '' : 's'}; nothing was run or recorded.\n${err.message}`, EXIT.invalid);
  }
  throw err;
}

let rerun: Set<number>;
try {
  rerun = new Set(selectJobs(jobs, args.values.rerun ?? []));
} catch (err) {
  if (err instanceof SelectionError) fail(`${err.message}; nothing was run or recorded.`, EXIT.invalid);
  throw err;
}

// Flags win over the spec's `run:` section, which wins over the defaults.
const run = spec.run;
const executorName = (args.values.executor ?? run.executor ?? 'local') as ExecutorName;
if (!EXECUTOR_NAMES.includes(executorName)) fail(`--executor: found "${executorName}"; allowed: ${EXECUTOR_NAMES.join(', ')}`, EXIT.invalid);
const gpus = args.values.gpus?.split(',').map((g) => g.trim()).filter(Boolean) ?? run.gpus?.map(String);
// Local: one job per GPU when GPUs are given, else one per CPU core (each job's native kernels then use one thread;
// with --concurrency 1 a job gets every core). Slurm and BullMQ:
// every job is handed over at once; the workers or the cluster decide how many run.
const defaultConcurrency = executorName === 'local' ? (gpus?.length ?? availableParallelism()) : Math.max(1, jobs.length);
const concurrency = intFlag('concurrency', args.values.concurrency, run.concurrency ?? defaultConcurrency, 1);
const retries = intFlag('retries', args.values.retries, run.retries ?? 1, 0);
const jobTimeout = args.values['job-timeout'] === undefined ? (run.job_timeout_s ?? null) : intFlag('job-timeout', args.values['job-timeout'], 0, 1);

if (args.values['dry-run']) {
  printPlan(spec.name, jobs);
  process.exit(EXIT.ok);
}

let executor;
try {
  executor = await createExecutor(executorName, {
    experiment: spec.name,
    redis: args.values.redis ?? run.redis,
    gpus,
    threadsPerJob: Math.max(1, Math.floor(availableParallelism() / concurrency)),
    slurm: {
      partition: args.values.partition ?? run.slurm?.partition,
      time: args.values.time ?? run.slurm?.time,
      cpus: args.values.cpus === undefined ? run.slurm?.cpus : intFlag('cpus', args.values.cpus, 1, 1),
      gpus: args.values['gpus-per-task'] === undefined ? run.slurm?.gpus : intFlag('gpus-per-task', args.values['gpus-per-task'], 0, 0),
      mem: args.values.mem ?? run.slurm?.mem,
      extra: args.values['sbatch-arg'] ?? run.slurm?.sbatch_args,
    },
  });
} catch (err) {
  fail((err as Error).message, EXIT.invalid);
}

const dbPath = args.values.db ?? DEFAULT_DB;
const store = openStore(dbPath);


const progress = process.stdout.isTTY && !args.values.plain ? new TerminalProgress() : new LogProgress();
const sweep = new Sweep({
  store,
  executor,
  progress,
  concurrency,
  retries,
  jobTimeoutSeconds: jobTimeout,
  wait: args.values.wait ?? false,
  noCopy: args.values['no-copy'] ?? false,
  rerun,
  gitCommit: gitCommit(),
  plannedSteps: (config) => estimateTrainCost(config).steps,
  // Checkpoints live beside the database, one folder per job (by config hash).
  checkpointRoot: join(dirname(resolve(dbPath)), 'checkpoints', spec.name),
});
let interrupted = false;
const onSignal = (): void => {
  if (interrupted) {
    // Jobs left 'running' under this dead process are taken over by the next sweep, which resumes their last states.
    progress.log('stopping now, without waiting for the running jobs to save');
    process.exit(EXIT.interrupted);
  }
  interrupted = true;
  progress.log(
    `stopping: running jobs save their training state (up to ${STOP_GRACE_MS / 1000} s; Ctrl-C again to stop now) and are recorded as interrupted; ` +
      'finished jobs stay (run the same command to resume)',
  );
  sweep.stop('interrupted by the user (Ctrl-C)');
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const summary = await sweep.run({ name: spec.name, description: spec.description, file: spec.file, text: spec.text, record: specRecord(spec) }, jobs);
await executor.close?.();
store.close();
console.log(
  `${spec.name}: ${summary.done} done, ${summary.failed} failed, ${summary.interrupted} interrupted, ${summary.alreadyDone} already done before` +
    `${summary.copied ? `, ${summary.copied} copied from identical jobs of other experiments` : ''}` +
    `${summary.doneElsewhere ? `, ${summary.doneElsewhere} done by another sweep` : ''}` +
    `${summary.busyElsewhere ? `, ${summary.busyElsewhere} not done: left to another live sweep` : ''} (database ${args.values.db ?? DEFAULT_DB})`,
);
if (summary.fatal) fail(`sweep stopped: ${summary.fatal}`, EXIT.failed);
if (interrupted) process.exit(EXIT.interrupted);
if (summary.failed > 0) process.exit(EXIT.failed);
// Jobs stopped by a SIGTERM from outside the sweep (a batch system, a shutdown): not done, resumable.
if (summary.interrupted > 0) process.exit(EXIT.interrupted);
if (summary.busyElsewhere > 0) {
  fail(
    `${summary.busyElsewhere} jobs are not done: another live sweep of ${spec.name} runs them (or the jobs they evaluate). ` +
      'Run the same command with --wait to wait for them, or again once that sweep has ended (`npm run status` shows them).',
    EXIT.leftElsewhere,
  );
}
process.exit(EXIT.ok);

function printPlan(name: string, grid: Job[]): void {
  const rows = grid.map((job) => ({ job, cost: estimateTrainCost(job.config) }));
  const labelWidth = Math.max(6, ...grid.map((j) => labelsText(j.labels).length));
  const evalOnly = grid.filter((j) => j.sourceIndex !== null).length;
  console.log(`${name}: ${grid.length} jobs${evalOnly ? ` (${evalOnly} evaluation-only, reusing trained weights)` : ''} (dry run: nothing is run or recorded)`);
  console.log(`${'#'.padStart(4)}  ${'labels'.padEnd(labelWidth)}  ${'hash'.padEnd(16)}  ${'steps'.padStart(7)}  ${'samples'.padStart(9)}  ${'GFLOPs'.padStart(10)}`);
  for (const { job, cost } of rows) {
    const columns =
      job.sourceIndex === null
        ? `${String(cost.steps).padStart(7)}  ${String(cost.samples).padStart(9)}  ${(cost.total_flops / 1e9).toFixed(1).padStart(10)}`
        : `evaluates the weights of #${job.sourceIndex}`;
    console.log(`${String(job.index).padStart(4)}  ${labelsText(job.labels).padEnd(labelWidth)}  ${job.hash}  ${columns}`);
  }
  const total = rows.filter((r) => r.job.sourceIndex === null).reduce((s, r) => s + r.cost.total_flops, 0);
  console.log(`total: ${grid.length} jobs, ${(total / 1e12).toFixed(3)} TFLOPs of training (analytic estimate)`);
}

