/**
 * The sweep coordinator: records the experiment and its jobs, skips jobs already done, runs the rest through an
 * executor with bounded concurrency (p-queue), retries failures, and is the only writer of the results database.
 */
import PQueue from 'p-queue';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { TrainConfig } from '../../models/index.js';
import type { Job } from '../grid/job.js';
import { labelsText } from '../spec/label.js';
import type { ResultStore, LogLine, MetricPoint } from '../store/result-store.js';
import type { JobRow, JobStatus, ResolvedSpecRecord } from '../store/types.js';
import type { Executor, JobExtras, JobOutcome } from './executor.js';
import { coordinatorFaultFromEnv, killNow } from './fault-injection.js';
import type { JobMessage } from './messages.js';
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
  /** A running job whose coordinator is silent this long is taken over. */
  staleSeconds?: number;
  /** Folder for per-job checkpoints (<root>/<config hash>/); null keeps none (and evaluation-only jobs cannot run). */
  checkpointRoot: string | null;
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
  done: number;
  failed: number;
  interrupted: number;
  /** Jobs another live coordinator is running (or ran) while this one was going (left to it). */
  busyElsewhere: number;
  /** Why the sweep had to stop early (the database could not be written), or null. */
  fatal: string | null;
}

/** Seconds between writes of buffered curve points (and heartbeats). */
const FLUSH_SECONDS = 1;

export class Sweep {
  private readonly controllers = new Set<AbortController>();
  private stopping: string | null = null;
  private fatal: string | null = null;
  private queue: PQueue | null = null;
  private finishedJobs = 0;
  private readonly fault = coordinatorFaultFromEnv();

  constructor(private readonly options: SweepOptions) {}

  /** Stops the sweep: queued jobs are not started, running ones are stopped and recorded as interrupted. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = reason;
    this.queue?.clear();
    for (const c of this.controllers) c.abort(reason);
  }

  async run(experiment: SweepExperiment, jobs: Job[]): Promise<SweepSummary> {
    const { store, progress } = this.options;
    const host = hostname();
    const experimentId = store.upsertExperiment({
      name: experiment.name,
      description: experiment.description,
      spec_path: experiment.file,
      spec_yaml: experiment.text,
      spec_resolved: experiment.record,
    });
    store.recoverStale(experimentId, host, this.options.staleSeconds ?? 600, isAlive);
    const rows = store.syncJobs(
      experimentId,
      jobs.map((j) => ({ cell_index: j.index, config: j.config, config_hash: j.hash, labels: j.labels, seed: j.seed, source: j.sourceIndex })),
    );
    const summary: SweepSummary = { experimentId, total: jobs.length, alreadyDone: 0, done: 0, failed: 0, interrupted: 0, busyElsewhere: 0, fatal: null };
    const toRun: { job: Job; row: JobRow }[] = [];
    rows.forEach((row, i) => {
      if (row.status === 'done') summary.alreadyDone++;
      else if (row.status === 'running') summary.busyElsewhere++;
      else toRun.push({ job: jobs[i], row });
    });
    progress.planned(jobs.length, toRun.length, summary.alreadyDone);
    if (summary.busyElsewhere > 0) progress.log(`${summary.busyElsewhere} jobs are running in another live sweep and are left to it`);

    this.queue = new PQueue({ concurrency: Math.max(1, this.options.concurrency) });
    const queue = this.queue;
    const count = (status: JobStatus | 'elsewhere'): void => {
      if (status === 'done') summary.done++;
      else if (status === 'failed') summary.failed++;
      else if (status === 'elsewhere') summary.busyElsewhere++;
      else summary.interrupted++;
    };
    // Evaluation-only jobs wait for the job that trains their weights: they are queued when it ends, so a waiting
    // job never holds a slot the training job needs.
    const dependents = new Map<number, { job: Job; row: JobRow }[]>();
    const enqueue = (item: { job: Job; row: JobRow }): void => {
      void queue.add(async () => {
        const status = await this.runWithRetries(item.job, item.row, host);
        count(status);
        for (const dependent of dependents.get(item.row.id) ?? []) {
          if (status === 'done') enqueue(dependent);
          else if (!this.stopping) count(this.failWithoutRunning(dependent.row.id, host, `its training job ${item.row.id} ended ${status}; nothing to evaluate`));
        }
      });
    };
    for (const item of toRun) {
      const source = item.job.sourceIndex === null ? null : rows[item.job.sourceIndex];
      if (source === null || source.status === 'done') enqueue(item);
      else if (source.status === 'running') summary.busyElsewhere++;
      else dependents.set(source.id, [...(dependents.get(source.id) ?? []), item]);
    }
    await this.queue.onIdle();
    // Jobs cleared from the queue by a stop never started: they stay pending.
    this.guard(() => store.touchExperiment(experimentId));
    progress.close();
    summary.fatal = this.fatal;
    return summary;
  }

  /** A write that fails (disk full, I/O error) stops the sweep: what is recorded stays consistent, and the jobs left
   * 'running' are taken over by the next sweep. */
  private guard(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.storeFailed(err);
    }
  }

  private storeFailed(err: unknown): void {
    if (this.fatal) return;
    this.fatal = `the results database ${this.options.store.path} cannot be written: ${(err as Error).message}. What was recorded before is intact; free space (or fix the file) and run the same command again to resume.`;
    this.stop(this.fatal);
  }

  private async runWithRetries(job: Job, row: JobRow, host: string): Promise<JobStatus | 'elsewhere'> {
    let status: JobStatus | 'elsewhere' = 'failed';
    for (let attempt = 0; attempt <= this.options.retries && !this.stopping; attempt++) {
      const outcome = await this.attempt(job, row, host, attempt + 1);
      status = outcome.status;
      if (status !== 'failed' || !outcome.retryable) break;
    }
    return this.stopping && status === 'failed' ? 'interrupted' : status;
  }

  /** What the executor needs besides the config: where to save checkpoints, or which checkpoint to evaluate.
   * A string is the reason an evaluation-only job cannot run. */
  private jobExtras(row: JobRow): JobExtras | string {
    const { store, checkpointRoot } = this.options;
    if (row.source_job_id === null) return checkpointRoot ? { checkpointDir: join(checkpointRoot, row.config_hash) } : {};
    const path = store.artifact(row.source_job_id, 'final') ?? store.artifact(row.source_job_id, 'pretrain');
    if (!path || !existsSync(path)) {
      return `the checkpoint of its training job ${row.source_job_id} is missing (${path ?? 'never saved'}); rerun that job (delete its row or the whole experiment) to evaluate again`;
    }
    return { evaluateCheckpoint: path };
  }

  /** Records a job as failed without running it (its training job did not succeed). */
  private failWithoutRunning(jobId: number, host: string, reason: string): JobStatus | 'elsewhere' {
    try {
      if (!this.options.store.startAttempt(jobId, { host, pid: process.pid, git_commit: this.options.gitCommit })) return 'elsewhere';
      this.options.store.endAttempt(jobId, 'failed', reason, [], null);
    } catch (err) {
      this.storeFailed(err);
    }
    return 'failed';
  }

  private async attempt(job: Job, row: JobRow, host: string, attempt: number): Promise<{ status: JobStatus | 'elsewhere'; retryable: boolean }> {
    try {
      return await this.attemptUnguarded(job, row, host, attempt);
    } catch (err) {
      this.storeFailed(err);
      return { status: 'interrupted', retryable: false };
    }
  }

  private async attemptUnguarded(job: Job, row: JobRow, host: string, attempt: number): Promise<{ status: JobStatus | 'elsewhere'; retryable: boolean }> {
    const { store, executor, progress } = this.options;
    const jobId = row.id;
    const extras = this.jobExtras(row);
    if (typeof extras === 'string') {
      // An evaluation-only job whose weights are gone cannot run; say which job to rerun.
      return { status: this.failWithoutRunning(jobId, host, extras), retryable: false };
    }
    if (!store.startAttempt(jobId, { host, pid: process.pid, git_commit: this.options.gitCommit })) {
      // Another sweep of the same experiment took (or finished) it since we listed the jobs.
      return { status: 'elsewhere', retryable: false };
    }
    const view: JobView = { id: jobId, label: labelsText(job.labels), step: 0, totalSteps: this.options.plannedSteps(job.config), startedAt: Date.now(), loss: null };
    progress.started(view, attempt);

    let buffer: MetricPoint[] = [];
    let logs: LogLine[] = [];
    let lastStep: number | null = null;
    let lastElapsed: number | null = null;
    const flushLogs = (): void => {
      store.appendLogs(jobId, logs);
      logs = [];
    };
    // Also with nothing to write: the heartbeat tells other coordinators this job is owned (a job may wait long in a
    // Slurm or BullMQ queue before its first step).
    const flush = (): void => {
      this.guard(() => {
        store.appendMetrics(jobId, buffer, lastStep);
        flushLogs();
      });
      buffer = [];
    };
    const timer = setInterval(flush, FLUSH_SECONDS * 1000);
    const controller = new AbortController();
    this.controllers.add(controller);
    // The limit counts from the job's start: at once for local jobs, from its first report for queued executors.
    let timeout: NodeJS.Timeout | null = null;
    const startTimeout = (): void => {
      if (timeout !== null || this.options.jobTimeoutSeconds === null) return;
      const seconds = this.options.jobTimeoutSeconds;
      timeout = setTimeout(() => controller.abort(`timed out after ${seconds} s (--job-timeout)`), seconds * 1000);
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
        this.guard(() => store.setRuntime(jobId, m.backend, m.device));
        if (m.total_steps > 0) view.totalSteps = m.total_steps;
      } else if (m.type === 'step') {
        lastStep = m.step;
        lastElapsed = m.metrics.elapsed_seconds ?? lastElapsed;
        for (const [name, value] of Object.entries(m.metrics)) buffer.push({ step: m.step, name, value, elapsed_seconds: lastElapsed });
        view.step = m.step;
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
    // Before the job's final state: a reader that sees the job ended sees all of its log.
    flushLogs();
    if (outcome.kind === 'result') {
      if (outcome.backend) store.setRuntime(jobId, outcome.backend, outcome.device);
      this.finishedJobs++;
      const killWhileWriting = this.fault?.kind === 'kill-while-writing' && this.fault.job === this.finishedJobs;
      const results = row.source_job_id !== null ? { ...trainingResults(store.results(row.source_job_id)), ...outcome.results, evaluated_from_job: row.source_job_id } : outcome.results;
      store.finishJob(jobId, results, buffer, lastStep, killWhileWriting ? killNow : undefined, outcome.artifacts);
      if (this.fault?.kind === 'kill-after-job' && this.fault.job === this.finishedJobs) killNow();
      progress.ended(view, 'done', resultText(results));
      return { status: 'done', retryable: false };
    }
    if (outcome.kind === 'aborted' && this.stopping) {
      store.endAttempt(jobId, 'interrupted', `${outcome.reason}${at}`, buffer, lastStep);
      progress.ended(view, 'interrupted', outcome.reason);
      return { status: 'interrupted', retryable: false };
    }
    const message = outcome.kind === 'aborted' ? outcome.reason : outcome.message;
    store.endAttempt(jobId, 'failed', `${message}${at}`, buffer, lastStep);
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
