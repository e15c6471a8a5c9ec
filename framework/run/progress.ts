/** How a sweep shows its progress: a live view on a terminal, plain log lines otherwise. */
import type { JobStatus } from '../store/types.js';

export interface JobView {
  id: number;
  /** "mask.image_ratio=0.5 seed=1" */
  label: string;
  step: number;
  /** The trainer's plan; for a job bounded by time alone only an estimate, so its progress is shown in seconds. */
  totalSteps: number;
  /** train.time_budget_s when time is the job's only budget, else null. */
  timeBudgetS: number | null;
  /** Seconds of training so far (evaluations excluded), as the trainer reports them. */
  trainSeconds: number;
  startedAt: number;
  loss: number | null;
}

export interface ProgressSink {
  planned(total: number, toRun: number, alreadyDone: number): void;
  started(job: JobView, attempt: number): void;
  step(job: JobView): void;
  /** `willRetry`: a failed attempt that another attempt follows (the job is not finished). */
  ended(job: JobView, status: JobStatus, detail: string, willRetry?: boolean): void;
  /** A line the job's trainer logged (backend choice, data, model size, phases). */
  jobLog(job: JobView, message: string): void;
  log(message: string): void;
  close(): void;
}

/** "[job 3 mask.image_ratio=0.5 seed=1] message", one such line per line of a multi-line message. */
function jobLogLines(job: JobView, message: string): string[] {
  const prefix = `[job ${job.id} ${job.label}]`;
  return message.split('\n').map((line) => `${prefix} ${line}`);
}

const fmtTime = (s: number): string => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`);

/** ETA of a job: the training time left of a time budget, else from its step rate so far. */
function jobEta(job: JobView): string {
  if (job.timeBudgetS !== null) return fmtTime(Math.max(0, job.timeBudgetS - job.trainSeconds));
  const elapsed = (Date.now() - job.startedAt) / 1000;
  if (job.step <= 0 || job.totalSteps <= 0) return '?';
  return fmtTime(Math.max(0, ((job.totalSteps - job.step) * elapsed) / job.step));
}

/** "step 120/512", or "step 120, 14s/35s" for a job bounded by time alone (its step count is not known ahead). */
function stepText(job: JobView): string {
  if (job.timeBudgetS !== null) return `step ${job.step}, ${fmtTime(job.trainSeconds)}/${fmtTime(job.timeBudgetS)}`;
  return `step ${job.step}/${job.totalSteps}`;
}

/** Share of the job done, in [0, 1]. */
function jobShare(job: JobView): number {
  if (job.timeBudgetS !== null) return job.timeBudgetS > 0 ? Math.min(1, job.trainSeconds / job.timeBudgetS) : 0;
  return job.totalSteps > 0 ? Math.min(1, job.step / job.totalSteps) : 0;
}

class Counter {
  toRun = 0;
  finished = 0;
  failed = 0;
  readonly startedAt = Date.now();
  durations: number[] = [];

  /** Counts a finished job (a failed attempt that will be retried is not one). */
  record(job: JobView, status: JobStatus, willRetry: boolean): void {
    if (status === 'done' || (status === 'failed' && !willRetry)) this.finished++;
    if (status === 'done') this.durations.push((Date.now() - job.startedAt) / 1000);
  }

  /** Overall ETA: mean duration of finished jobs times the jobs left, over the jobs running at once. */
  eta(running: number): string {
    if (this.durations.length === 0) return '?';
    const mean = this.durations.reduce((a, b) => a + b, 0) / this.durations.length;
    const left = this.toRun - this.finished;
    return fmtTime((left * mean) / Math.max(1, running));
  }
}

export class LogProgress implements ProgressSink {
  private readonly counter = new Counter();
  private readonly lastLine = new Map<number, number>();

  constructor(
    private readonly write: (line: string) => void = (l) => console.log(l),
    private readonly everySeconds = 10,
  ) {}

  planned(total: number, toRun: number, alreadyDone: number): void {
    this.counter.toRun = toRun;
    this.write(`${total} jobs: ${alreadyDone} already done, ${toRun} to run`);
  }
  started(job: JobView, attempt: number): void {
    this.lastLine.set(job.id, Date.now());
    this.write(`[job ${job.id}] start ${job.label}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
  }
  step(job: JobView): void {
    const last = this.lastLine.get(job.id) ?? 0;
    if (Date.now() - last < this.everySeconds * 1000) return;
    this.lastLine.set(job.id, Date.now());
    this.write(`[job ${job.id}] ${stepText(job)} loss ${job.loss?.toFixed(4) ?? '?'} eta ${jobEta(job)}`);
  }
  ended(job: JobView, status: JobStatus, detail: string, willRetry = false): void {
    this.counter.record(job, status, willRetry);
    this.write(`[job ${job.id}] ${status} ${job.label}${detail ? `: ${detail}` : ''} (${this.counter.finished}/${this.counter.toRun})`);
  }
  jobLog(job: JobView, message: string): void {
    for (const line of jobLogLines(job, message)) this.write(line);
  }
  log(message: string): void {
    this.write(message);
  }
  close(): void {}
}

/** Redraws a block of lines: overall progress, then one line per running job. */
export class TerminalProgress implements ProgressSink {
  private readonly counter = new Counter();
  private readonly running = new Map<number, JobView>();
  private drawnLines = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  planned(total: number, toRun: number, alreadyDone: number): void {
    this.counter.toRun = toRun;
    this.print(`${total} jobs: ${alreadyDone} already done, ${toRun} to run`);
  }
  started(job: JobView): void {
    this.running.set(job.id, job);
  }
  step(job: JobView): void {
    this.running.set(job.id, job);
  }
  ended(job: JobView, status: JobStatus, detail: string, willRetry = false): void {
    this.running.delete(job.id);
    this.counter.record(job, status, willRetry);
    this.print(`${status === 'done' ? 'done  ' : status.padEnd(6)} job ${job.id} ${job.label}${detail ? `: ${detail}` : ''}`);
  }
  jobLog(job: JobView, message: string): void {
    // Above the live block, dimmed, so that the jobs' start and end lines stand out among them.
    this.print(jobLogLines(job, message).map((line) => `\x1b[2m${line}\x1b[0m`).join('\n'));
  }
  log(message: string): void {
    this.print(message);
  }
  close(): void {
    clearInterval(this.timer);
    this.clear();
  }

  private print(line: string): void {
    this.clear();
    this.out.write(line + '\n');
    this.draw();
  }

  private clear(): void {
    if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A\x1b[0J`);
    this.drawnLines = 0;
  }

  private draw(): void {
    this.clear();
    const c = this.counter;
    const width = 30;
    const share = c.toRun > 0 ? c.finished / c.toRun : 1;
    const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '.');
    const lines = [`[${bar}] ${c.finished}/${c.toRun} jobs, ${fmtTime((Date.now() - c.startedAt) / 1000)} elapsed, eta ${c.eta(this.running.size)}`];
    for (const job of this.running.values()) {
      const pct = Math.floor(100 * jobShare(job));
      lines.push(`  job ${job.id} ${job.label}  ${stepText(job)} (${pct}%)  loss ${job.loss?.toFixed(4) ?? '-'}  eta ${jobEta(job)}`);
    }
    this.out.write(lines.join('\n') + '\n');
    this.drawnLines = lines.length;
  }
}
