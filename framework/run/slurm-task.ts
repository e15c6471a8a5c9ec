/**
 * Entry point of one task of a Slurm array job submitted by the slurm executor:
 *   node --import tsx framework/run/slurm-task.ts BATCH_DIR
 * runs the job at index $SLURM_ARRAY_TASK_ID of BATCH_DIR/manifest.json in a child process (job-process.ts, as the
 * local executor does) and appends each of its messages, then its outcome, as JSON lines to BATCH_DIR/out/INDEX.jsonl,
 * which the coordinator reads on the shared filesystem. Exit 0 after a result, 1 otherwise (Slurm shows FAILED).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { JobOutcome } from './executor.js';
import { LocalExecutor } from './local-executor.js';
import type { JobMessage } from './messages.js';
import { taskOutputPath, type SlurmManifest, type TaskLine } from './slurm-executor.js';

const dir = process.argv[2];
const index = Number(process.env.SLURM_ARRAY_TASK_ID);
if (!dir || !Number.isInteger(index) || index < 0) {
  console.error(`slurm-task: expected BATCH_DIR as argument and SLURM_ARRAY_TASK_ID set; found dir "${dir ?? ''}", SLURM_ARRAY_TASK_ID "${process.env.SLURM_ARRAY_TASK_ID ?? ''}"`);
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SlurmManifest;
const entry = manifest.jobs[index];
if (!entry) {
  console.error(`slurm-task: the manifest in ${dir} has ${manifest.jobs.length} jobs; found task index ${index}`);
  process.exit(1);
}

const file = taskOutputPath(dir, index);
mkdirSync(join(dir, 'out'), { recursive: true });
// One start of this task (Slurm may requeue it): the coordinator drops what a restart repeats.
const run = `${process.env.SLURM_JOB_ID ?? '?'}.${process.env.SLURM_RESTART_COUNT ?? '0'}.${process.pid}`;
const where = `${hostname()} (Slurm job ${process.env.SLURM_ARRAY_JOB_ID ?? '?'}_${index})`;
const write = (line: TaskLine): void => appendFileSync(file, JSON.stringify(line) + '\n');

// scancel, the time limit (--signal=B:TERM@N) and preemption send SIGTERM (then SIGKILL after KillWait): the child
// saves its training state at the next step boundary and stops.
const controller = new AbortController();
const stop = (signal: string) => () => controller.abort(`Slurm sent ${signal} (scancel, time limit or preemption)`);
process.on('SIGTERM', stop('SIGTERM'));
process.on('SIGINT', stop('SIGINT'));

/** How long a task that requeued itself waits for Slurm to stop it before exiting on its own. */
const REQUEUE_WAIT_MS = 30_000;

/** The outcome must be on disk before Slurm reports the task ended: the coordinator then looks for it. */
function syncOutcome(): void {
  const fd = openSync(file, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

write({ run, where, message: { type: 'log', message: `task started on ${where}` } });
const ran: JobOutcome = await new LocalExecutor().run(entry.config, (message: JobMessage) => write({ run, where, message }), controller.signal, entry.extras ?? {});
// Stopped by Slurm: the task asks to run again (it was submitted --requeue) and continues from the saved state. The
// coordinator keeps waiting after a requeued outcome; should the requeue fail, the next line is the final outcome.
const outcome: JobOutcome = ran.kind === 'aborted' ? { kind: 'interrupted', reason: ran.reason } : ran;
const jobId = process.env.SLURM_JOB_ID;
if (outcome.kind === 'interrupted' && jobId) {
  // Still RUNNING: a signal only (scancel --signal, the time limit's --signal), so the task requeues itself. Pending
  // again: Slurm requeued it (preemption in REQUEUE mode, scontrol requeue). Anything else (cancelled): it ends here.
  const state = slurm('squeue', ['--noheader', `--jobs=${jobId}`, '--format=%T']);
  if (state.ok && state.text === 'RUNNING') {
    write({ run, where, outcome: { ...outcome, requeued: true } });
    const requeue = slurm('scontrol', ['requeue', jobId]);
    if (!requeue.ok) write({ run, where, outcome: { ...outcome, reason: `${outcome.reason}; scontrol requeue ${jobId} failed: ${requeue.text}` } });
    // slurmctld acts on the requeue by ending this task itself: exiting first could record the task FAILED
    // (NonZeroExitCode) before the requeue takes hold (seen once in CI). So wait for it, a bounded time.
    else {
      syncOutcome();
      await new Promise((resolve) => setTimeout(resolve, REQUEUE_WAIT_MS));
    }
  } else if (state.ok && /^(PENDING|REQUEUED|REQUEUE_FED|REQUEUE_HOLD)$/.test(state.text)) {
    write({ run, where, outcome: { ...outcome, requeued: true } });
  } else write({ run, where, outcome });
} else write({ run, where, outcome });
syncOutcome();
process.exit(outcome.kind === 'result' ? 0 : 1);

function slurm(cmd: string, args: string[]): { ok: boolean; text: string } {
  try {
    return { ok: true, text: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).trim() };
  } catch (err) {
    return { ok: false, text: ((err as { stderr?: string }).stderr || (err as Error).message).trim() };
  }
}
