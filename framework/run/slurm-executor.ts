/**
 * Runs jobs as tasks of Slurm array jobs. The runner calls run() once per job; the calls that arrive within a short
 * window (200 ms) become one array job (`sbatch --array=0-N`), whose tasks each run one job of a manifest:
 *
 *   WORK_DIR/<experiment>-<time>-<pid>/batch-<k>/manifest.json   {experiment, jobs: [{hash, config}]}, index = task id
 *                                               /submit.sh       what each task runs (framework/run/slurm-task.ts)
 *                                               /array-job-id    the Slurm id of the array job
 *                                               /out/<index>.jsonl   the task's messages, then its outcome (JSON lines)
 *                                               /logs/<index>.log    the task's stdout and stderr
 *
 * WORK_DIR (default results/slurm) must be on a filesystem the compute nodes share with the coordinator. The
 * coordinator reads the .jsonl files every second (and `squeue` every 5 s), forwards each task's messages to the runner
 * (the only writer of SQLite) and settles run() with the outcome line; a task that ends without one (killed, out of
 * memory, node failure) is a crash with Slurm's state and the tail of its log. A retry (the runner's --retries call
 * run() again) is a new array job of the jobs to retry. An abort (Ctrl-C, --job-timeout) cancels the task with
 * `scancel`. A coordinator started again after one that died (kill -9, lost login session) attaches to the tasks of its
 * jobs still queued or running, found through the manifests and `array-job-id` files of the experiment's earlier work
 * dirs, and replays their files.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../../models/index.js';
import type { Executor, JobExtras, JobOutcome } from './executor.js';
import { RerunFilter, isJobOutcome, jobKey } from './job-runner-core.js';
import type { JobMessage } from './messages.js';

/** sbatch settings, from the sweep's flags. */
export interface SlurmSettings {
  /** --partition */
  partition?: string;
  /** --time, e.g. 30 or 2:00:00 */
  time?: string;
  /** --cpus-per-task */
  cpus?: number;
  /** GPUs per task (--gres=gpu:N) */
  gpus?: number;
  /** --mem, e.g. 8G */
  mem?: string;
  /** More sbatch options, each complete: --account=NAME, --qos=high, --constraint=a100 */
  extra?: string[];
  /** Shared directory for manifests and task outputs (default results/slurm). */
  workDir?: string;
}

export interface SlurmExecutorOptions {
  /** run() calls arriving this close together go into one array job. @default 200 */
  batchWindowMs?: number;
  /** How often the task files are read. @default 1000 */
  pollMs?: number;
  /** How often squeue is asked for the tasks' states (only needed to notice tasks that die without an outcome; sites
   * dislike frequent queries). @default 5000 */
  squeueMs?: number;
  /** How long a task that Slurm says has completed may take to show its outcome line (shared filesystems cache
   * attributes). @default 30000 */
  outcomeGraceMs?: number;
  /** The checkout each task runs from (the same path on the compute nodes). @default this repository */
  root?: string;
  /** The node binary the tasks run. @default the coordinator's (process.execPath) */
  node?: string;
}

/** What manifest.json holds. */
export interface SlurmManifest {
  experiment: string;
  created: string;
  /** hash: jobKey(config, extras); extras: checkpoint paths, which the compute nodes must see. */
  jobs: { hash: string; config: TrainConfig; extras?: JobExtras }[];
}

/** One line of a task's out/<index>.jsonl: a message of the job, or its outcome (the last line). */
export type TaskLine = { run: string; where: string; message: JobMessage } | { run: string; where: string; outcome: JobOutcome };

export const taskOutputPath = (dir: string, index: number): string => join(dir, 'out', `${index}.jsonl`);

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const DEFAULTS = { batchWindowMs: 200, pollMs: 1000, squeueMs: 5000, outcomeGraceMs: 30_000 };
/** Slurm's default MaxArraySize is 1001: larger batches are split. */
const MAX_ARRAY_TASKS = 1000;
/** Grace for a task that ended in a failure state (its wrapper was killed: no outcome is coming). */
const FAILED_GRACE_MS = 3000;
const LOG_TAIL_LINES = 15;
/** Seconds before the time limit at which a task is told to save and requeue (a step and a state write). */
const STOP_SIGNAL_S = 60;
/** States after which a task runs no more (squeue -t all). */
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'REVOKED', 'SPECIAL_EXIT']);

interface PendingRun {
  config: TrainConfig;
  extras: JobExtras;
  hash: string;
  onMessage: (message: JobMessage) => void;
  signal: AbortSignal;
  settle: (outcome: JobOutcome) => void;
  settled: boolean;
  /** Set when its array job is being submitted: resolves once sbatch has returned (and `task` is set if it worked). */
  submission: Promise<void> | null;
  task: Task | null;
}

interface Task {
  run: PendingRun;
  /** `<array job id>_<index>`, as squeue and scancel name it. */
  id: string;
  dir: string;
  index: number;
  offset: number;
  partial: string;
  filter: RerunFilter;
  outcome: JobOutcome | null;
  state: string | null;
  submittedAt: number;
  endedAt: number | null;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  private waiting: PendingRun[] = [];
  private batchTimer: NodeJS.Timeout | null = null;
  private readonly tasks = new Set<Task>();
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastSqueue = 0;
  private toCancel: string[] = [];
  private cancelling: Promise<void> | null = null;
  private batches = 0;
  private readonly workRoot: string;
  private readonly sweepDir: string;
  /** Tasks of earlier coordinators still queued or running, by config hash (looked up once, at the first run()). */
  private live: Promise<Map<string, { dir: string; index: number; id: string }>> | null = null;
  private readonly jobName: string;
  private readonly options: Required<SlurmExecutorOptions>;

  private constructor(
    private readonly experiment: string,
    private readonly settings: SlurmSettings,
    options: SlurmExecutorOptions,
  ) {
    this.options = { ...DEFAULTS, root: ROOT, node: process.execPath, ...options };
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    this.workRoot = resolve(settings.workDir ?? 'results/slurm');
    this.sweepDir = join(this.workRoot, `${safeName(experiment)}-${stamp}-${process.pid}`);
    this.jobName = `flip-${safeName(experiment)}`;
  }

  /** Checks the settings and that the Slurm commands are there (a login node, or a machine with slurm-client). */
  static async create(experiment: string, settings: SlurmSettings, options: SlurmExecutorOptions = {}): Promise<SlurmExecutor> {
    for (const arg of settings.extra ?? []) {
      if (!arg.startsWith('-')) throw new Error(`--sbatch-arg: found "${arg}"; expected a complete sbatch option such as --account=NAME or --qos=high`);
    }
    try {
      await command('sbatch', ['--version']);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'sbatch is not on PATH' : `sbatch --version failed: ${(err as Error).message}`;
      throw new Error(`--executor slurm: ${why}; run the sweep where the Slurm client commands work (a login node)`);
    }
    return new SlurmExecutor(experiment, settings, options);
  }

  async run(config: TrainConfig, onMessage: (message: JobMessage) => void, signal: AbortSignal, extras: JobExtras = {}): Promise<JobOutcome> {
    const hash = jobKey(config, extras);
    this.live ??= this.findLiveTasks();
    const liveTasks = await this.live;
    const live = liveTasks.get(hash);
    if (signal.aborted) return { kind: 'aborted', reason: String(signal.reason ?? 'aborted') };
    return new Promise((resolvePromise) => {
      const pending: PendingRun = { config, extras, hash, onMessage, signal, settled: false, submission: null, task: null, settle: () => {} };
      const onAbort = (): void => {
        this.waiting = this.waiting.filter((p) => p !== pending);
        const aborted: JobOutcome = { kind: 'aborted', reason: String(signal.reason ?? 'aborted') };
        // Settled once scancel has returned: the sweep may exit right after.
        if (pending.task) void this.cancel(pending.task.id).then(() => pending.settle(aborted));
        else if (pending.submission) {
          void pending.submission.then(() => (pending.task ? this.cancel(pending.task.id) : undefined)).then(() => pending.settle(aborted));
        } else pending.settle(aborted);
      };
      pending.settle = (outcome) => {
        if (pending.settled) return;
        pending.settled = true;
        signal.removeEventListener('abort', onAbort);
        if (pending.task) this.tasks.delete(pending.task);
        if (this.tasks.size === 0 && this.pollTimer) {
          clearInterval(this.pollTimer);
          this.pollTimer = null;
        }
        resolvePromise(outcome);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (live) {
        liveTasks.delete(hash);
        this.track(pending, live.id, live.dir, live.index);
        onMessage({ type: 'status', message: `attached to Slurm task ${live.id}, queued by an earlier coordinator (${live.dir})` });
        return;
      }
      this.waiting.push(pending);
      this.batchTimer ??= setTimeout(() => void this.submitWaiting(), this.options.batchWindowMs);
    });
  }

  /** Watches a submitted task for a run: its file from the start, its state in squeue. */
  private track(run: PendingRun, id: string, dir: string, index: number): void {
    const task: Task = { run, id, dir, index, offset: 0, partial: '', filter: new RerunFilter(run.onMessage), outcome: null, state: null, submittedAt: Date.now(), endedAt: null };
    run.task = task;
    this.tasks.add(task);
    this.pollTimer ??= setInterval(() => void this.poll(), this.options.pollMs);
  }

  /** Queued or running tasks of this experiment submitted by earlier coordinators, by config hash. */
  private async findLiveTasks(): Promise<Map<string, { dir: string; index: number; id: string }>> {
    const found = new Map<string, { dir: string; index: number; id: string }>();
    const arrays = new Map<string, { dir: string; manifest: SlurmManifest }>();
    const pattern = new RegExp(`^${escapeRegExp(safeName(this.experiment))}-\\d{8}-\\d{6}-\\d+$`);
    try {
      // Oldest first: should an array job id come back (a reinstalled cluster), the newest directory claiming it wins.
      for (const sweep of existsSync(this.workRoot) ? readdirSync(this.workRoot).sort() : []) {
        if (!pattern.test(sweep)) continue;
        for (const batch of readdirSync(join(this.workRoot, sweep))) {
          const dir = join(this.workRoot, sweep, batch);
          if (!existsSync(join(dir, 'array-job-id'))) continue;
          const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SlurmManifest;
          arrays.set(readFileSync(join(dir, 'array-job-id'), 'utf8').trim(), { dir, manifest });
        }
      }
      if (arrays.size === 0) return found;
      const text = await command('squeue', ['--noheader', '--array', '--states=PENDING,CONFIGURING,RUNNING,SUSPENDED,REQUEUED', `--name=${this.jobName}`, '--format=%F|%K']);
      for (const line of text.split('\n')) {
        const [job, index] = line.trim().split('|');
        const array = arrays.get(job);
        const entry = array?.manifest.jobs[Number(index)];
        if (array && entry) found.set(entry.hash, { dir: array.dir, index: Number(index), id: `${job}_${index}` });
      }
    } catch (err) {
      process.stderr.write(`slurm: could not look for tasks of earlier coordinators (${(err as Error).message}); their jobs are submitted again\n`);
    }
    return found;
  }

  /** Submits the runs gathered in the window as array jobs. */
  private async submitWaiting(): Promise<void> {
    this.batchTimer = null;
    const runs = this.waiting.splice(0);
    for (let i = 0; i < runs.length; i += MAX_ARRAY_TASKS) {
      const chunk = runs.slice(i, i + MAX_ARRAY_TASKS);
      const submission = this.submitArray(chunk);
      for (const r of chunk) r.submission = submission;
      await submission;
    }
  }

  private async submitArray(runs: PendingRun[]): Promise<void> {
    const dir = join(this.sweepDir, `batch-${++this.batches}`);
    let arrayId: string;
    let args: string[] = [];
    try {
      mkdirSync(join(dir, 'out'), { recursive: true });
      mkdirSync(join(dir, 'logs'), { recursive: true });
      const manifest: SlurmManifest = { experiment: this.experiment, created: new Date().toISOString(), jobs: runs.map((r) => ({ hash: r.hash, config: r.config, ...(Object.keys(r.extras).length ? { extras: r.extras } : {}) })) };
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
      args = ['--parsable', `--job-name=${this.jobName}`, `--array=0-${runs.length - 1}`, `--output=${join(dir, 'logs', '%a.log')}`, ...this.sbatchOptions(), join(dir, 'submit.sh')];
      writeFileSync(
        join(dir, 'submit.sh'),
        [
          '#!/bin/bash',
          `# One task of a flip-sweep array job (task index = job index in manifest.json), submitted with:`,
          `#   sbatch ${args.map(shellQuote).join(' ')}`,
          `cd ${shellQuote(this.options.root)} || exit 1`,
          `exec ${shellQuote(this.options.node)} --import tsx framework/run/slurm-task.ts ${shellQuote(dir)}`,
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      arrayId = (await command('sbatch', args)).trim().split(';')[0];
      if (!/^\d+$/.test(arrayId)) throw new Error(`unexpected sbatch output "${arrayId}"`);
      // For a coordinator started after this one dies: which array job runs this manifest.
      writeFileSync(join(dir, 'array-job-id'), `${arrayId}\n`);
    } catch (err) {
      const message = `could not submit the array job in ${dir} (its sbatch command is in submit.sh there): ${(err as Error).message}`;
      for (const r of runs) r.settle({ kind: 'crashed', message });
      return;
    }
    runs.forEach((run, index) => {
      // A run aborted while sbatch ran cancels its task once this returns.
      this.track(run, `${arrayId}_${index}`, dir, index);
      run.onMessage({ type: 'status', message: `submitted as Slurm task ${arrayId}_${index} (${dir})` });
    });
  }

  private sbatchOptions(): string[] {
    const s = this.settings;
    return [
      // Preemption and requeues run the task again (it resumes from its checkpoint); SIGTERM to the batch shell (the
      // task itself: submit.sh execs it) STOP_SIGNAL_S before the time limit gives it time to save and requeue.
      '--requeue',
      `--signal=B:TERM@${STOP_SIGNAL_S}`,
      ...(s.partition ? [`--partition=${s.partition}`] : []),
      ...(s.time ? [`--time=${s.time}`] : []),
      ...(s.cpus ? [`--cpus-per-task=${s.cpus}`] : []),
      ...(s.gpus ? [`--gres=gpu:${s.gpus}`] : []),
      ...(s.mem ? [`--mem=${s.mem}`] : []),
      ...(s.extra ?? []),
    ];
  }

  /** scancel of the tasks aborted in the same tick, in one call; resolves when it has returned. */
  private cancel(taskId: string): Promise<void> {
    this.toCancel.push(taskId);
    this.cancelling ??= new Promise<void>((resolvePromise) =>
      setImmediate(() => {
        const ids = this.toCancel.splice(0);
        this.cancelling = null;
        command('scancel', ids)
          .catch((err) => process.stderr.write(`slurm: scancel ${ids.join(' ')} failed: ${(err as Error).message}\n`))
          .finally(resolvePromise);
      }),
    );
    return this.cancelling;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      // States first, files second: a task seen ended has written its outcome before, so this read finds it.
      const states = Date.now() - this.lastSqueue >= this.options.squeueMs ? await this.queryStates() : null;
      if (states) this.lastSqueue = Date.now();
      const now = Date.now();
      for (const task of [...this.tasks]) {
        this.readTaskFile(task);
        if (task.outcome) {
          task.run.settle(task.outcome);
          continue;
        }
        if (!states) continue;
        const s = states.get(task.id);
        if (s && s.state !== task.state) {
          task.run.onMessage({ type: 'status', message: `Slurm task ${task.id}: ${s.state}${s.reason && s.reason !== 'None' ? ` (${s.reason})` : ''}` });
          task.state = s.state;
        }
        // Not listed: ended long ago (MinJobAge) or purged; listed right after sbatch returns otherwise.
        const ended = s ? ENDED.has(s.state) : now - task.submittedAt > 10_000;
        if (!ended) continue;
        task.endedAt ??= now;
        const grace = s && s.state !== 'COMPLETED' ? FAILED_GRACE_MS : this.options.outcomeGraceMs;
        if (now - task.endedAt < grace) continue;
        const how = s ? `${s.state}${s.reason && s.reason !== 'None' ? ` (${s.reason})` : ''}` : '(no longer known to squeue)';
        const log = join(task.dir, 'logs', `${task.index}.log`);
        const tail = logTail(log);
        task.run.settle({ kind: 'crashed', message: `Slurm task ${task.id} ended ${how} without reporting an outcome${tail ? `; its last output (${log}):\n${tail}` : ''}` });
      }
    } finally {
      this.polling = false;
    }
  }

  /** State and reason of every task of our array jobs, or null when squeue failed (try again next round). */
  private async queryStates(): Promise<Map<string, { state: string; reason: string }> | null> {
    let text: string;
    try {
      text = await command('squeue', ['--noheader', '--array', '--states=all', `--name=${this.jobName}`, '--format=%F|%K|%T|%r']);
    } catch {
      return null;
    }
    const states = new Map<string, { state: string; reason: string }>();
    for (const line of text.split('\n')) {
      const [job, index, state, reason] = line.trim().split('|');
      if (job && index && state) states.set(`${job}_${index}`, { state, reason: reason ?? '' });
    }
    return states;
  }

  /** Forwards the lines the task appended since the last read. */
  private readTaskFile(task: Task): void {
    const file = taskOutputPath(task.dir, task.index);
    if (!existsSync(file)) return;
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= task.offset) return;
      const buffer = Buffer.alloc(size - task.offset);
      const n = readSync(fd, buffer, 0, buffer.length, task.offset);
      task.offset += n;
      const lines = (task.partial + buffer.subarray(0, n).toString('utf8')).split('\n');
      task.partial = lines.pop() ?? '';
      for (const text of lines) {
        if (!text.trim()) continue;
        let line: TaskLine;
        try {
          line = JSON.parse(text) as TaskLine;
        } catch {
          task.run.onMessage({ type: 'status', message: `${file}: skipped a line that is not JSON: ${text.slice(0, 120)}` });
          continue;
        }
        if ('message' in line) task.filter.accept(line.run, line.message, line.where);
        else if ('outcome' in line && isJobOutcome(line.outcome)) {
          if (line.outcome.kind === 'interrupted' && line.outcome.requeued) {
            task.run.onMessage({ type: 'status', message: `Slurm task ${task.id}: ${line.outcome.reason}; requeued, it resumes from its saved state` });
            task.outcome = null;
          } else task.outcome = line.outcome;
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

function command(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(stderr.trim() || err.message), { code: (err as NodeJS.ErrnoException).code }));
      else resolvePromise(stdout);
    });
  });
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '';
  }
}

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_');
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const shellQuote = (s: string): string => (/^[A-Za-z0-9_./=:%,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
