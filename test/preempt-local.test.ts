/**
 * Graceful stop of a local sweep: SIGTERM to the coordinator (as Ctrl-C, a batch system or a shutdown sends it) makes
 * the running job save a resume state at its next step and stop; the job is recorded as interrupted at that step, and
 * the same command run again continues from exactly there to the numbers of a sweep that was never stopped. No
 * periodic states (checkpoint_every larger than the run): the only state is the one saved on the way out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EXIT } from '../framework/cli/common.js';
import { ROOT, runCli, writeFiles } from './helpers.js';

const SPEC = `name: preempt
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  mask: { image_ratio: 0.5 }
  train: { batch_size: 16, steps: 300, checkpoint_every: 100000, checkpoint_every_s: null }
  eval: { every: 0 }
`;

interface Job {
  status: string;
  error: string | null;
  last_step: number | null;
  resumed_from_step: number | null;
}

function read(db: string): { job: Job | undefined; results: Record<string, number>; steps: number[] } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const job = d.prepare('SELECT status, error, last_step, resumed_from_step FROM jobs').get() as Job | undefined;
    const results = Object.fromEntries((d.prepare('SELECT name, value FROM results').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]));
    const steps = (d.prepare("SELECT step FROM metrics WHERE name = 'loss' ORDER BY step").all() as { step: number }[]).map((r) => r.step);
    return { job, results, steps };
  } finally {
    d.close();
  }
}

/** Starts a sweep and resolves once its job has recorded step 60. */
async function sweepPastStep60(spec: string, db: string): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/sweep.ts', spec, '--db', db, '--plain'], { cwd: ROOT, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = Date.now();
  for (;;) {
    let step = 0;
    try {
      step = read(db).job?.last_step ?? 0;
    } catch {
      // not yet created or migrated
    }
    if (step >= 60) return { child, exited };
    if (Date.now() - started > 120_000) {
      child.kill('SIGKILL');
      assert.fail(`the sweep did not reach step 60 in 120 s (step ${step})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('SIGTERM to a sweep saves the running job at its next step, records it interrupted there, and the rerun resumes to the uninterrupted numbers', async () => {
  const dir = writeFiles({});
  for (const sub of ['whole', 'stopped']) {
    mkdirSync(join(dir, sub));
    writeFileSync(join(dir, sub, 's.yaml'), SPEC);
  }
  const whole = join(dir, 'whole', 'r.db');
  const stopped = join(dir, 'stopped', 'r.db');
  const uninterrupted = runCli('sweep', [join(dir, 'whole', 's.yaml'), '--db', whole, '--plain'], { timeoutMs: 240_000 });
  assert.equal(uninterrupted.status, 0, uninterrupted.stdout + uninterrupted.stderr);
  const want = read(whole);

  const { child, exited } = await sweepPastStep60(join(dir, 'stopped', 's.yaml'), stopped);
  const signalledAt = Date.now();
  child.kill('SIGTERM');
  assert.equal(await exited, EXIT.interrupted);
  assert.ok(Date.now() - signalledAt < 30_000, 'stopped within the grace period');
  const cut = read(stopped);
  assert.equal(cut.job?.status, 'interrupted');
  const at = Number(/preempted at step (\d+), state saved/.exec(cut.job?.error ?? '')?.[1]);
  assert.ok(at >= 60 && at < 300, `interrupted with its state saved at a step past 60: ${cut.job?.error}`);
  assert.equal(cut.job?.last_step, at, 'its last recorded step is the saved one');

  const rerun = runCli('sweep', [join(dir, 'stopped', 's.yaml'), '--db', stopped, '--plain'], { timeoutMs: 240_000 });
  assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
  const got = read(stopped);
  assert.equal(got.job?.status, 'done');
  assert.equal(got.job?.resumed_from_step, at);
  assert.deepEqual(got.steps, Array.from({ length: 300 }, (_, i) => i + 1), 'every step of the curve once');
  assert.equal(got.results.final_loss, want.results.final_loss);
  assert.equal(got.results.zero_shot_top1, want.results.zero_shot_top1);
});

test('SIGTERM to the job process alone (a batch system, a shutdown) records the job interrupted at its saved step; the rerun resumes there', async () => {
  const dir = writeFiles({ 's.yaml': SPEC });
  const db = join(dir, 'r.db');
  const { child, exited } = await sweepPastStep60(join(dir, 's.yaml'), db);
  // The sweep's children include tsx's esbuild service: the job process is the one running job-process(.ts|-HASH.mjs).
  const job = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number)
    .find((pid) => /job-process/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')));
  assert.ok(job, 'the job process is a child of the sweep');
  process.kill(job, 'SIGTERM');
  assert.equal(await exited, EXIT.interrupted, 'a sweep with an interrupted job does not exit 0');
  const cut = read(db);
  assert.equal(cut.job?.status, 'interrupted', 'not failed, and not retried');
  const at = Number(/preempted at step (\d+), state saved/.exec(cut.job?.error ?? '')?.[1]);
  assert.ok(at >= 60 && at < 300, `interrupted with its state saved: ${cut.job?.error}`);

  const rerun = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--plain'], { timeoutMs: 240_000 });
  assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
  assert.equal(read(db).job?.resumed_from_step, at);
  assert.equal(read(db).job?.status, 'done');
});
