/**
 * The sweep coordinator: records the experiment and its jobs, skips jobs already done, runs the rest through an
 * executor with bounded concurrency (p-queue), retries failures, and is the only writer of the results database.
 */
import PQueue from 'p-queue';
import { existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { resumeDirOf, type TrainConfig } from '../../models/index.js';
import type { Job } from '../grid/job.js';
import { labelsText } from '../spec/label.js';
import { JobOwnershipLost, describeWriteFailure, type JobOwner, type ResultStore, type LogLine, type MetricPoint } from '../store/result-store.js';
import type { JobRow, JobStatus, ResolvedSpecRecord } from '../store/types.js';
import { JobTimedOut, type Executor, type JobExtras, type JobOutcome } from './executor.js';
import { CurveSampling } from './curve-sampling.js';
import { coordinatorFaultFromEnv, killNow } from './fault-injection.js';
import type { JobMessage } from './messages.js';
import { isProcessAlive, processStartTicks } from './process-identity.js';
import type { JobView, ProgressSink } from './progress.js';

export interface SweepOptions {
  store: ResultStore;
  executor: Executor;
  progress: ProgressSink;
  /** Jobs running at once. */
  concurrency: number;
  /** Extra attempts for a failed job within this sweep. */
  retries: number;
  /** A job running longer is stopped and recorded as failed; null = no limit. */
  jobTimeoutSeconds: number | null;
  gitCommit: string | null;
  /** Estimated steps of a job, for progress before the job reports its own plan. */
  plannedSteps: (config: TrainConfig) => number;
  /** Jobs left running by another live sweep: wait for them (and run those it abandons) instead of ending without them. */
  wait?: boolean;
  /** Train every job, even one whose identical job (same config hash) another experiment in the database has done;
   * by default that job's record is copied instead. */
  noCopy?: boolean;
  /** Folder for per-job checkpoints (<root>/<config hash>/); null keeps none (and evaluation-only jobs cannot run). */
  checkpointRoot: string | null;
  /** Grid positions of jobs to run again from scratch even if done (`--rerun`), with the evaluation-only jobs that
   * evaluate their weights; never copied from another experiment. */
  rerun?: ReadonlySet<number>;
}

export interface SweepExperiment {
  name: string;
  description: string;
  file: string | null;
  text: string | null;
  record: ResolvedSpecRecord;
}

export interface SweepSummary {
  experimentId: number;
  total: number;
  alreadyDone: number;
  /** Jobs done by copying an identical job of another experiment (ResultStore.copyIdenticalJob). */
  copied: number;
  done: number;
  failed: number;
  interrupted: number;
  /** Jobs left to another live coordinator and not done when this one ended (running there, or waiting for a job
   * running there). */
  busyElsewhere: number;
  /** Jobs another coordinator finished while this one was going. */
  doneElsewhere: number;
  /** Why the sweep had to stop early (the database could not be written), or null. */
  fatal: string | null;
}

/** Seconds between writes of buffered curve points (and heartbeats). */
const FLUSH_SECONDS = 1;
/** Seconds between renewals of the leases of the jobs this coordinator runs (each holds LEASE_SECONDS). */
const RENEW_SECONDS = 5;
/** With --wait: seconds between looks at the jobs another sweep runs. */
const WAIT_POLL_SECONDS = 2;
/** The abort reason of a job whose lease another sweep took over: its outcome is not written. */
const LEASE_LOST = 'its lease expired and another sweep took the job over';

type AttemptStatus = JobStatus | 'elsewhere';

export class Sweep {
  private readonly controllers = new Set<AbortController>();
  private stopping: string | null = null;
  private fatal: string | null = null;
  private queue: PQueue | null = null;
  private finishedJobs = 0;
  private readonly fault = coordinatorFaultFromEnv();
  private readonly owner: JobOwner = { host: hostname(), pid: process.pid, pid_started: processStartTicks(process.pid) };
  /** The jobs this coordinator runs now (it holds their leases), and how to stop each. */
  private readonly owned = new Map<number, AbortController>();
  /** Ends a --wait pause early (on stop). */
  private wake: (() => void) | null = null;

  constructor(private readonly options: SweepOptions) {}

  /** Stops the sweep: queued jobs are not started, running ones are stopped and recorded as interrupted. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = reason;
    this.queue?.clear();
    for (const c of this.controllers) c.abort(reason);
    this.wake?.();
  }

  async run(experiment: SweepExperiment, jobs: Job[]): Promise<SweepSummary> {
    const { store, progress } = this.options;
    const summary: SweepSummary = { experimentId: -1, total: jobs.length, alreadyDone: 0, copied: 0, done: 0, failed: 0, interrupted: 0, busyElsewhere: 0, doneElsewhere: 0, fatal: null };
    this.guard(() => {
      summary.experimentId = store.upsertExperiment({
        name: experiment.name,
        description: experiment.description,
        spec_path: experiment.file,
        spec_yaml: experiment.text,
        spec_resolved: experiment.record,
      });
    });
    const renewal = setInterval(() => this.renewLeases(), RENEW_SECONDS * 1000);
    // Jobs left to another live sweep (position in `jobs` -> job id). The first round looks at every job, each later
    // one (--wait) at those left in the round before.
    let left = new Map<number, number>();
    try {
      for (let round = 0; !this.fatal; round++) {
        left = await this.runRound(summary, jobs, round === 0 ? null : left);
        if (left.size === 0 || !this.options.wait || this.stopping) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WAIT_POLL_SECONDS * 1000);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    } finally {
      clearInterval(renewal);
    }
    this.guard(() => {
      for (const id of left.values()) {
        if (store.job(id).status === 'done') summary.doneElsewhere++;
        else summary.busyElsewhere++;
      }
    });
    // Jobs cleared from the queue by a stop never started: they stay pending.
    this.guard(() => store.touchExperiment(summary.experimentId));
    progress.close();
    summary.fatal = this.fatal;
    return summary;
  }

  /**
   * One pass over the jobs (all, or the positions in `only`): takes over those whose owner is gone, skips the done ones,
   * runs the rest, and returns the jobs left to another live sweep (running there, or evaluating weights that a job
   * running there trains), by position.
   */
  private async runRound(summary: SweepSummary, jobs: Job[], only: Map<number, number> | null): Promise<Map<number, number>> {
    const { store, progress } = this.options;
    const first = only === null;
    const left = new Map<number, number>();
    let rows: JobRow[];
    try {
      store.recoverStale(summary.experimentId, this.owner.host, isProcessAlive);
      rows = store.syncJobs(
        summary.experimentId,
        jobs.map((j) => ({ cell_index: j.index, config: j.config, config_hash: j.hash, labels: j.labels, seed: j.seed, source: j.sourceIndex })),
      );
    } catch (err) {
      this.storeFailed(err);
      return only ?? left;
    }
    let rerunIds = new Set<number>();
    if (first && this.options.rerun?.size) {
      try {
        rerunIds = this.resetForRerun(rows);
        rows = rows.map((row) => store.job(row.id));
      } catch (err) {
        this.storeFailed(err);
        return left;
      }
    }
    const copiedNow = new Set<number>();
    if (first && !this.options.noCopy) {
      // One training per config in a database: a job another experiment has already trained identically (the suite's
      // shared cells, the Table 8 baselines) takes that job's record instead of training again.
      try {
        rows = rows.map((row) => {
          const from = row.status === 'pending' && !rerunIds.has(row.id) ? store.copyIdenticalJob(row.id) : null;
          if (from === null) return row;
          copiedNow.add(row.id);
          return store.job(row.id);
        });
      } catch (err) {
        this.storeFailed(err);
        return left;
      }
    }
    const toRun: { job: Job; row: JobRow; index: number }[] = [];
    rows.forEach((row, index) => {
      if (only && !only.has(index)) return;
      if (row.status === 'done') {
        if (copiedNow.has(row.id)) summary.copied++;
        else if (first) summary.alreadyDone++;
        else summary.doneElsewhere++;
      } else if (row.status === 'running') left.set(index, row.id);
      else toRun.push({ job: jobs[index], row, index });
    });
    if (first) {
      progress.planned(jobs.length, toRun.length, summary.alreadyDone);
      if (summary.copied > 0) progress.log(`${summary.copied} jobs copied from identical jobs (same config) of other experiments in the database, not trained again (--no-copy trains them)`);
      if (left.size > 0) progress.log(`${left.size} jobs are running in another live sweep and are left to it${this.options.wait ? ' (--wait: waiting for them)' : ''}`);
    } else if (toRun.length > 0) {
      progress.log(`--wait: ${toRun.length} jobs the other sweep left not done are run here`);
    }

    this.queue = new PQueue({ concurrency: Math.max(1, this.options.concurrency) });
    const queue = this.queue;
    const count = (item: { row: JobRow; index: number }, status: AttemptStatus): void => {
      if (status === 'done') summary.done++;
      else if (status === 'failed') summary.failed++;
      else if (status === 'elsewhere') left.set(item.index, item.row.id);
      else summary.interrupted++;
    };
    // Evaluation-only jobs wait for the job that trains their weights: they are queued when it ends, so a waiting
    // job never holds a slot the training job needs.
    const dependents = new Map<number, { job: Job; row: JobRow; index: number }[]>();
    const enqueue = (item: { job: Job; row: JobRow; index: number }): void => {
      void queue.add(async () => {
        const status = await this.runWithRetries(item.job, item.row);
        count(item, status);
        for (const dependent of dependents.get(item.row.id) ?? []) {
          if (status === 'done') enqueue(dependent);
          else if (status === 'elsewhere') left.set(dependent.index, dependent.row.id);
          else if (!this.stopping) count(dependent, this.failWithoutRunning(dependent.row.id, `its training job ${item.row.id} ended ${status}; nothing to evaluate`));
        }
      });
    };
    const queued = new Set(toRun.map((item) => item.row.id));
    for (const item of toRun) {
      const source = item.job.sourceIndex === null ? null : rows[item.job.sourceIndex];
      if (source === null || source.status === 'done') enqueue(item);
      else if (source.status === 'running') left.set(item.index, item.row.id);
      else if (queued.has(source.id)) dependents.set(source.id, [...(dependents.get(source.id) ?? []), item]);
      else count(item, this.failWithoutRunning(item.row.id, `its training job ${source.id} ended ${source.status}; nothing to evaluate`));
    }
    await queue.onIdle();
    return left;
  }

  /** Extends the leases of the jobs this coordinator runs; a job whose lease another sweep took over is stopped. */
  private renewLeases(): void {
    if (this.owned.size === 0) return;
    this.guard(() => {
      for (const id of this.options.store.renewLeases(this.owner, [...this.owned.keys()])) this.owned.get(id)?.abort(LEASE_LOST);
    });
  }

  /** A write that fails (disk full, I/O error) stops the sweep: what is recorded stays consistent, and the jobs left
   * 'running' are taken over by the next sweep. */
  private guard(write: () => void): void {
    // After one failed write, each further one could wait out the busy timeout again; the next sweep takes over.
    if (this.fatal) return;
    try {
      write();
    } catch (err) {
      this.storeFailed(err);
    }
  }

  private storeFailed(err: unknown): void {
    if (this.fatal) return;
    this.fatal = describeWriteFailure(this.options.store.path, err);
    this.stop(this.fatal);
  }

  private async runWithRetries(job: Job, row: JobRow): Promise<AttemptStatus> {
    let status: AttemptStatus = 'failed';
    for (let attempt = 0; attempt <= this.options.retries && !this.stopping; attempt++) {
      const outcome = await this.attempt(job, row, attempt + 1);
      status = outcome.status;
      if (status !== 'failed' || !outcome.retryable) break;
    }
    return this.stopping && status === 'failed' ? 'interrupted' : status;
  }

  /** --rerun: the selected jobs and the evaluation-only jobs of their weights become pending, without their records
   * or resume states (a rerun starts from scratch). Returns the ids of the jobs reset. */
  private resetForRerun(rows: JobRow[]): Set<number> {
    const { store, progress } = this.options;
    const selected = new Set(rows.filter((_, index) => this.options.rerun!.has(index)).map((row) => row.id));
    const dependents = rows.filter((row) => row.source_job_id !== null && selected.has(row.source_job_id) && !selected.has(row.id));
    const { reset, running, copies } = store.resetJobs([...selected, ...dependents.map((row) => row.id)]);
    const wasReset = new Set(reset);
    for (const row of rows) {
      const dir = wasReset.has(row.id) ? this.checkpointDirOf(row) : null;
      if (dir) rmSync(resumeDirOf(dir), { recursive: true, force: true });
    }
    progress.log(
      `--rerun: ${reset.length} jobs made pending again, their results, curves and logs removed` +
        `${dependents.length ? ` (${dependents.length} of them evaluation-only jobs of the rerun weights)` : ''}` +
        `${running.length ? `; ${running.length} running in another live sweep are left to it` : ''}` +
        `${copies.length ? `; ${copies.length} jobs of other experiments that had copied their records are pending again (the next sweep of their experiment copies the new ones)` : ''}`,
    );
    return wasReset;
  }

  /** A training job's checkpoint folder (<root>/<config hash>), or null for an evaluation-only job or without a root. */
  private checkpointDirOf(row: JobRow): string | null {
    const { checkpointRoot } = this.options;
    return checkpointRoot && row.source_job_id === null ? join(checkpointRoot, row.config_hash) : null;
  }

  /** What the executor needs besides the config: where to save checkpoints, or which checkpoint to evaluate.
   * A string is the reason an evaluation-only job cannot run. */
  private jobExtras(row: JobRow): JobExtras | string {
    const { store } = this.options;
    if (row.source_job_id === null) {
      const checkpointDir = this.checkpointDirOf(row);
      return checkpointDir ? { checkpointDir } : {};
    }
    const path = store.artifact(row.source_job_id, 'final') ?? store.artifact(row.source_job_id, 'pretrain');
    if (!path || !existsSync(path)) {
      return `the checkpoint of its training job ${row.source_job_id} is missing (${path ?? 'never saved'}); rerun that job (sweep --rerun with its labels) to evaluate again`;
    }
    return { evaluateCheckpoint: path };
  }

  /** Records a job as failed without running it (its training job did not succeed). */
  private failWithoutRunning(jobId: number, reason: string): AttemptStatus {
    try {
      if (!this.options.store.startAttempt(jobId, { ...this.owner, git_commit: this.options.gitCommit })) return 'elsewhere';
      this.options.store.endAttempt(jobId, 'failed', reason, [], null, this.owner);
    } catch (err) {
      this.storeFailed(err);
    }
    return 'failed';
  }

  private async attempt(job: Job, row: JobRow, attempt: number): Promise<{ status: AttemptStatus; retryable: boolean }> {
    try {
      return await this.attemptUnguarded(job, row, attempt);
    } catch (err) {
      if (err instanceof JobOwnershipLost) {
        this.options.progress.log(`[job ${row.id}] ${LEASE_LOST}; the outcome of this attempt is dropped`);
        return { status: 'elsewhere', retryable: false };
      }
      this.storeFailed(err);
      return { status: 'interrupted', retryable: false };
    }
  }

  private async attemptUnguarded(job: Job, row: JobRow, attempt: number): Promise<{ status: AttemptStatus; retryable: boolean }> {
    const { store, executor, progress } = this.options;
    const jobId = row.id;
    const extras = this.jobExtras(row);
    if (typeof extras === 'string') {
      // An evaluation-only job whose weights are gone cannot run; say which job to rerun.
      return { status: this.failWithoutRunning(jobId, extras), retryable: false };
    }
    if (!store.startAttempt(jobId, { ...this.owner, git_commit: this.options.gitCommit })) {
      // Another sweep of the same experiment took (or finished) it since we listed the jobs.
      return { status: 'elsewhere', retryable: false };
    }
    if (extras.checkpointDir && store.job(jobId).attempts === 1) {
      // The job's first attempt in this database: a resume state in its directory (named by the config hash) was
      // left by a job of another database, deleted or replaced since, perhaps with other code; continuing it would
      // splice that run into this one.
      rmSync(resumeDirOf(extras.checkpointDir), { recursive: true, force: true });
    }
    const controller = new AbortController();
    this.owned.set(jobId, controller);
    try {
      return await this.runOwned(job, row, attempt, extras, controller);
    } finally {
      this.owned.delete(jobId);
    }
  }

  /** The attempt of a job this coordinator has claimed: runs it, streams its curves, records its outcome. */
  private async runOwned(
    job: Job,
    row: JobRow,
    attempt: number,
    extras: JobExtras,
    controller: AbortController,
  ): Promise<{ status: AttemptStatus; retryable: boolean }> {
    const { store, executor, progress } = this.options;
    const jobId = row.id;
    const t = job.config.train;
    const timeOnly = t.time_budget_s != null && t.steps == null && t.samples == null && t.epochs == null;
    const view: JobView = {
      id: jobId, label: labelsText(job.labels), step: 0, totalSteps: this.options.plannedSteps(job.config),
      timeBudgetS: timeOnly ? t.time_budget_s : null, trainSeconds: 0, startedAt: Date.now(), loss: null,
    };
    progress.started(view, attempt);

    let buffer: MetricPoint[] = [];
    let sampling = new CurveSampling(view.totalSteps);
    // The points of the last step reported, if sampling skipped it: recorded when the attempt ends, so that every
    // curve reaches the job's last step.
    let unrecorded: MetricPoint[] = [];
    const withLastStep = (): MetricPoint[] => [...buffer, ...unrecorded];
    let logs: LogLine[] = [];
    let lastStep: number | null = null;
    let lastElapsed: number | null = null;
    const flushLogs = (): void => {
      store.appendLogs(jobId, logs);
      logs = [];
    };
    // Also with nothing to write: heartbeat_at shows readers (status, report) that the job is alive, also while it
    // waits in a Slurm or BullMQ queue before its first step. Ownership itself is the lease (renewLeases).
    const flush = (): void => {
      this.guard(() => {
        store.appendMetrics(jobId, buffer, lastStep);
        flushLogs();
      });
      buffer = [];
    };
    const timer = setInterval(flush, FLUSH_SECONDS * 1000);
    this.controllers.add(controller);
    // The limit counts from the job's start: at once for local jobs, from its first report for queued executors.
    let timeout: NodeJS.Timeout | null = null;
    const startTimeout = (): void => {
      if (timeout !== null || this.options.jobTimeoutSeconds === null) return;
      const seconds = this.options.jobTimeoutSeconds;
      timeout = setTimeout(() => controller.abort(new JobTimedOut(`timed out after ${seconds} s (--job-timeout)`)), seconds * 1000);
    };
    if (executor.name === 'local') startTimeout();
    const onMessage = (m: JobMessage): void => {
      if (m.type === 'status') {
        progress.log(`[job ${jobId}] ${m.message}`);
      } else if (m.type === 'log') {
        logs.push({ at: new Date().toISOString(), message: m.message });
        progress.jobLog(view, m.message);
      } else if (m.type === 'start') {
        startTimeout();
        // A start after a lost process (remote executors) recomputes the steps past the state it continues from: the
        // store drops those points, and so does the buffer, so each step is recorded once, by the run that counts.
        const from = m.resumed_from_step ?? 0;
        buffer = buffer.filter((p) => p.step <= from);
        unrecorded = [];
        this.guard(() => store.trainingStarted(jobId, m.backend, m.device, m.resumed_from_step ?? null));
        if (m.total_steps > 0) view.totalSteps = m.total_steps;
        sampling = new CurveSampling(view.totalSteps);
      } else if (m.type === 'step') {
        lastStep = m.step;
        lastElapsed = m.metrics.elapsed_seconds ?? lastElapsed;
        const points = Object.entries(m.metrics).map(([name, value]) => ({ step: m.step, name, value, elapsed_seconds: lastElapsed }));
        if (sampling.records(m.step)) {
          buffer.push(...points);
          unrecorded = [];
        } else {
          unrecorded = points;
        }
        view.step = m.step;
        view.trainSeconds = lastElapsed;
        view.loss = m.metrics.loss ?? view.loss;
        progress.step(view);
      } else if (m.type === 'eval') {
        const elapsed = m.metrics.elapsed_seconds ?? lastElapsed;
        for (const [name, value] of Object.entries(m.metrics)) if (name !== 'elapsed_seconds') buffer.push({ step: m.step, name, value, elapsed_seconds: elapsed });
        flush();
      }
    };

    let outcome: JobOutcome;
    try {
      outcome = await executor.run(job.config, onMessage, controller.signal, extras);
    } catch (err) {
      outcome = { kind: 'crashed', message: `executor ${executor.name} failed: ${(err as Error).message}` };
    } finally {
      clearInterval(timer);
      if (timeout !== null) clearTimeout(timeout);
      this.controllers.delete(controller);
    }

    const at = lastStep !== null ? ` (last step ${lastStep})` : ' (before the first step)';
    if (this.fatal) {
      // The database cannot be written: the job stays 'running' under this process, which the next sweep sees dead.
      progress.ended(view, 'interrupted', 'the results database cannot be written');
      return { status: 'interrupted', retryable: false };
    }
    if (controller.signal.reason === LEASE_LOST) {
      // The job is another sweep's now: nothing of this attempt is written.
      progress.ended(view, 'interrupted', LEASE_LOST);
      return { status: 'elsewhere', retryable: false };
    }
    // Before the job's final state: a reader that sees the job ended sees all of its log.
    flushLogs();
    if (outcome.kind === 'result') {
      if (outcome.backend) store.setRuntime(jobId, outcome.backend, outcome.device);
      this.finishedJobs++;
      const killWhileWriting = this.fault?.kind === 'kill-while-writing' && this.fault.job === this.finishedJobs;
      const results = row.source_job_id !== null ? { ...trainingResults(store.results(row.source_job_id)), ...outcome.results, evaluated_from_job: row.source_job_id } : outcome.results;
      store.finishJob(jobId, results, withLastStep(), lastStep, killWhileWriting ? killNow : undefined, outcome.artifacts, this.owner);
      if (this.fault?.kind === 'kill-after-job' && this.fault.job === this.finishedJobs) killNow();
      progress.ended(view, 'done', resultText(results));
      return { status: 'done', retryable: false };
    }
    if (outcome.kind === 'interrupted') {
      // Stopped by a SIGTERM from outside the sweep (preemption, scancel --signal): a rerun resumes from its state.
      store.endAttempt(jobId, 'interrupted', `${outcome.reason}${at}`, withLastStep(), lastStep, this.owner);
      progress.ended(view, 'interrupted', outcome.reason);
      return { status: 'interrupted', retryable: false };
    }
    if (outcome.kind === 'aborted' && this.stopping) {
      store.endAttempt(jobId, 'interrupted', `${outcome.reason}${at}`, withLastStep(), lastStep, this.owner);
      progress.ended(view, 'interrupted', outcome.reason);
      return { status: 'interrupted', retryable: false };
    }
    const message = outcome.kind === 'aborted' ? outcome.reason : outcome.message;
    store.endAttempt(jobId, 'failed', `${message}${at}`, withLastStep(), lastStep, this.owner);
    const retryable = !(outcome.kind === 'error' && outcome.config);
    const willRetry = retryable && attempt <= this.options.retries && !this.stopping;
    progress.ended(view, 'failed', `${firstLine(message)}${at}${willRetry ? ' (will retry)' : ''}`, willRetry);
    return { status: 'failed', retryable };
  }
}

/** Training numbers an evaluation-only job shares with the job that trained its weights (for tables of time and FLOPs). */
const TRAINING_RESULTS = ['train_seconds', 'train_flops', 'samples_seen', 'steps', 'tune_steps', 'peak_memory_bytes', 'peak_rss_bytes', 'final_loss'];

function trainingResults(results: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(results).filter(([name]) => TRAINING_RESULTS.includes(name)));
}

function resultText(results: Record<string, number>): string {
  const pct = (v: number | undefined): string => (v === undefined ? '-' : `${(100 * v).toFixed(1)}%`);
  return `zero-shot top-1 ${pct(results.zero_shot_top1)}, i2t R@1 ${pct(results.retrieval_i2t_r1)}, ${results.train_seconds?.toFixed(1) ?? '?'} s`;
}

const firstLine = (s: string): string => s.split('\n')[0];
