/**
 * Exact resume through a real sweep: the whole sweep (coordinator and job process, one process group) is killed with
 * SIGKILL mid-training, and the same command run again continues the job from its last resume state. The job records
 * the step it went on from, its curve has each recorded step once (the same steps as the uninterrupted run's: 1,100
 * steps are more than framework/run/curve-sampling.ts records, so every third), and its final loss and zero-shot
 * accuracy are those of a sweep that was never stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, runCli, writeFiles } from './helpers.js';

// States every 40 steps (and none by time), evaluations every 100: the kill lands after the state of step 120 at the
// earliest, so the rerun's curve keeps the first attempt's evaluation at step 100.
const SPEC = `name: resume
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  mask: { image_ratio: 0.5 }
  train: { batch_size: 16, steps: 1100, checkpoint_every: 40, checkpoint_every_s: null }
  eval: { every: 100 }
`;

interface Job {
  status: string;
  attempts: number;
  last_step: number | null;
  resumed_from_step: number | null;
}

function read(db: string): { job: Job | undefined; results: Record<string, number>; steps: number[]; evals: number[] } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const job = d.prepare('SELECT status, attempts, last_step, resumed_from_step FROM jobs').get() as Job | undefined;
    const results = Object.fromEntries((d.prepare('SELECT name, value FROM results').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]));
    const steps = (d.prepare("SELECT step FROM metrics WHERE name = 'loss' ORDER BY step").all() as { step: number }[]).map((r) => r.step);
    const evals = (d.prepare("SELECT step FROM metrics WHERE name = 'zero_shot_top1' ORDER BY step").all() as { step: number }[]).map((r) => r.step);
    return { job, results, steps, evals };
  } finally {
    d.close();
  }
}

test('a sweep killed with SIGKILL mid-training resumes the job from its last state and ends with the numbers of an uninterrupted sweep', async () => {
  const dir = writeFiles({});
  for (const sub of ['whole', 'killed']) {
    mkdirSync(join(dir, sub));
    writeFileSync(join(dir, sub, 's.yaml'), SPEC);
  }
  const whole = join(dir, 'whole', 'r.db');
  const killed = join(dir, 'killed', 'r.db');

  const uninterrupted = runCli('sweep', [join(dir, 'whole', 's.yaml'), '--db', whole, '--plain'], { timeoutMs: 240_000 });
  assert.equal(uninterrupted.status, 0, uninterrupted.stdout + uninterrupted.stderr);
  const want = read(whole);
  assert.equal(want.job?.resumed_from_step, null);
  // 1,100 planned steps over at most 500 points: every third step, and the first and the last.
  const sampled = [1, ...Array.from({ length: 366 }, (_, i) => 3 * (i + 1)), 1100];
  assert.deepEqual(want.steps, sampled, 'the uninterrupted curve: first, every third, last');
  assert.deepEqual(want.evals, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100], 'every evaluation, on the sampled steps or not');

  // The whole sweep in a process group of its own, killed at once with SIGKILL once a state exists and training is
  // past it (polling the database and the state folder, not a fixed delay).
  const child = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/sweep.ts', join(dir, 'killed', 's.yaml'), '--db', killed, '--plain'], {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // Checkpoints lie beside the database: checkpoints/<experiment>/<config hash>/resume/latest.json.
  const stateDir = join(dir, 'killed', 'checkpoints', 'resume');
  const hasState = () => existsSync(stateDir) && readdirSync(stateDir).some((hash) => existsSync(join(stateDir, hash, 'resume', 'latest.json')));
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      let step = 0;
      try {
        step = existsSync(killed) ? (read(killed).job?.last_step ?? 0) : 0;
      } catch {
        return; // not yet created or migrated
      }
      if (step >= 125 && hasState()) {
        clearInterval(poll);
        process.kill(-child.pid!, 'SIGKILL');
        resolve();
      } else if (Date.now() - started > 180_000) {
        clearInterval(poll);
        process.kill(-child.pid!, 'SIGKILL');
        reject(new Error(`the sweep did not get past step 125 with a resume state in 180 s (step ${step})`));
      }
    }, 50);
  });
  assert.equal(await exited, 'SIGKILL');
  const cut = read(killed);
  assert.equal(cut.job?.status, 'running', 'killed mid-training');
  assert.ok((cut.job?.last_step ?? 0) < 1100, `killed before the end (step ${cut.job?.last_step})`);
  // Kept for the last part: a state that a later, fresh database must not continue.
  const foreign = join(dir, 'foreign-states');
  cpSync(stateDir, foreign, { recursive: true });

  const rerun = runCli('sweep', [join(dir, 'killed', 's.yaml'), '--db', killed, '--plain'], { timeoutMs: 240_000 });
  assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
  assert.match(rerun.stdout + rerun.stderr, /resumed from the state saved at step \d+/);
  const got = read(killed);
  assert.equal(got.job?.status, 'done');
  assert.equal(got.job?.attempts, 2);
  const from = got.job?.resumed_from_step ?? 0;
  assert.ok(from >= 120 && from % 40 === 0, `resumed from the state of step ${from}`);
  assert.deepEqual(got.steps, sampled, 'each recorded step of the curve once, as the uninterrupted run recorded them');
  assert.deepEqual(got.evals, want.evals, 'the evaluations of both attempts, as the uninterrupted run made them');
  const rel = Math.abs(got.results.final_loss - want.results.final_loss) / Math.abs(want.results.final_loss);
  assert.ok(rel <= 1e-6, `final loss ${got.results.final_loss} vs ${want.results.final_loss} (relative ${rel})`);
  assert.equal(got.results.zero_shot_top1, want.results.zero_shot_top1);
  assert.equal(got.results.steps, 1100);

  const status = runCli('status', ['--experiment', 'resume', '--db', killed, '--logs', '0']);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`\\bresumed\\b[\\s\\S]*\\bdone\\b.*\\b${from}\\b`));
  // The database deleted and a new one made beside the same checkpoints, where a state of the same config is left
  // (as a killed sweep of the old database would leave it): the job's first attempt in the new database starts from
  // step 0 and ends as the uninterrupted sweep did.
  for (const f of [killed, `${killed}-wal`, `${killed}-shm`]) rmSync(f, { force: true });
  cpSync(foreign, stateDir, { recursive: true });
  assert.ok(hasState(), 'the old state is back in place');
  const fresh = runCli('sweep', [join(dir, 'killed', 's.yaml'), '--db', killed, '--plain'], { timeoutMs: 240_000 });
  assert.equal(fresh.status, 0, fresh.stdout + fresh.stderr);
  assert.doesNotMatch(fresh.stdout + fresh.stderr, /resumed from the state/);
  const anew = read(killed);
  assert.equal(anew.job?.attempts, 1);
  assert.equal(anew.job?.resumed_from_step, null);
  assert.deepEqual(anew.steps, sampled);
  assert.equal(anew.results.final_loss, want.results.final_loss);
  assert.equal(anew.results.zero_shot_top1, want.results.zero_shot_top1);
});
