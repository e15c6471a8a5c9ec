/**
 * Preemption on a real single-node Slurm (munged, slurmctld, slurmd on 127.0.0.1, started here): the array task is
 * sent SIGTERM mid-training (`scancel --batch --signal=TERM`, what a time limit's --signal or a preemption does); it
 * saves its state, requeues itself (submitted --requeue), and the requeued run resumes from that state. The sweep
 * ends done in one coordinator attempt, with the numbers and curve of the uninterrupted local run.
 * Skipped without the Slurm packages or root (fails in CI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, writeFiles } from './helpers.js';
import { startCli } from './services/cli.js';
import { waitFor } from './services/daemons.js';
import { recordedJobs } from './services/results.js';
import { slurmAvailability, startSlurm, type TestSlurm } from './services/slurm.js';

const EXPERIMENT = 'preempt-slurm';
const STEPS = 300;
// No periodic states: the only state is the one the task saves when signalled.
const SPEC = `name: ${EXPERIMENT}
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  mask: { image_ratio: 0.5 }
  train: { batch_size: 16, steps: ${STEPS}, checkpoint_every: 100000, checkpoint_every_s: null }
  eval: { every: 0 }
`;
const WORK_DIR = join(ROOT, 'results', 'slurm');

const availability = slurmAvailability();
if (availability.fail) test('Slurm (munge, slurmctld, slurmd, client) is installed', () => assert.fail(availability.fail!));

function sweepDirs(): string[] {
  return existsSync(WORK_DIR) ? readdirSync(WORK_DIR).filter((d) => new RegExp(`^${EXPERIMENT}-\\d{8}-\\d{6}-\\d+$`).test(d)).map((d) => join(WORK_DIR, d)) : [];
}

/** The highest step the task's output file reports, and the array job id it names. */
function taskProgress(): { step: number; arrayId: string | null } {
  const out = sweepDirs().map((d) => join(d, 'batch-1', 'out', '0.jsonl')).find(existsSync);
  if (!out) return { step: 0, arrayId: null };
  const text = readFileSync(out, 'utf8');
  const steps = [...text.matchAll(/"type":"step","step":(\d+)/g)].map((m) => Number(m[1]));
  return { step: Math.max(0, ...steps), arrayId: /Slurm job (\d+)_0/.exec(text)?.[1] ?? null };
}

describe('slurm preemption', { skip: availability.skip }, () => {
  let slurm: TestSlurm;
  let dir: string;
  const clean = (): void => {
    for (const d of sweepDirs()) rmSync(d, { recursive: true, force: true });
    try {
      rmdirSync(WORK_DIR);
    } catch {
      // not empty (other sweeps' work) or not there
    }
  };
  before(async () => {
    clean();
    dir = writeFiles({ 's.yaml': SPEC });
    slurm = await startSlurm();
  });
  after(async () => {
    await slurm?.stop();
    clean();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a task sent SIGTERM mid-training saves, requeues itself and resumes: done with the uninterrupted numbers', async () => {
    const spec = join(dir, 's.yaml');
    const local = await startCli('sweep', [spec, '--db', join(dir, 'local.db'), '--plain']).exited;
    assert.equal(local.code, 0, local.output);
    const want = [...recordedJobs(join(dir, 'local.db')).values()][0];

    const t0 = Date.now();
    const sweep = startCli('sweep', [spec, '--db', join(dir, 'slurm.db'), '--executor', 'slurm', '--retries', '0', '--plain'], slurm.env);
    await waitFor('the task past step 60', () => taskProgress().step >= 60, 120_000, sweep.output);
    const { arrayId } = taskProgress();
    assert.ok(arrayId, 'the array job id in the task output');
    const signalled = spawnSync('scancel', ['--batch', '--signal=TERM', `${arrayId}_0`], { env: slurm.env, encoding: 'utf8' });
    assert.equal(signalled.status, 0, signalled.stderr);
    // Slurm holds a requeued batch job back for a while (its begin time moves about two minutes ahead); the test lets
    // it start at once.
    const task = `${arrayId}_0`;
    await waitFor('the task pending again', () => /^PENDING$/m.test(squeueState(slurm.env, task)), 60_000, sweep.output);
    const release = spawnSync('scontrol', ['update', `JobId=${task}`, 'StartTime=now'], { env: slurm.env, encoding: 'utf8' });
    assert.equal(release.status, 0, release.stderr);
    const result = await sweep.exited;
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, new RegExp(`${EXPERIMENT}: 1 done, 0 failed, 0 interrupted`));
    assert.match(result.output, /preempted at step \d+, state saved.*requeued/);

    const d = new Database(join(dir, 'slurm.db'), { readonly: true });
    const row = d.prepare('SELECT status, attempts, resumed_from_step FROM jobs').get() as { status: string; attempts: number; resumed_from_step: number | null };
    d.close();
    assert.equal(row.status, 'done');
    assert.equal(row.attempts, 1, 'a requeue is not a coordinator retry');
    assert.ok((row.resumed_from_step ?? 0) >= 60 && row.resumed_from_step! < STEPS, `resumed from step ${row.resumed_from_step}`);
    const got = [...recordedJobs(join(dir, 'slurm.db')).values()][0];
    assert.equal(got.results.final_loss, want.results.final_loss);
    assert.equal(got.results.zero_shot_top1, want.results.zero_shot_top1);
    assert.equal(got.curves.loss.length, STEPS);
    assert.equal(got.duplicatePoints, 0);
    assert.deepEqual(got.curves.loss, want.curves.loss);

    const submit = readFileSync(join(sweepDirs()[0], 'batch-1', 'submit.sh'), 'utf8');
    assert.match(submit, /--requeue '--signal=B:TERM@60'/);
    console.log(`slurm task signalled at step >= 60, requeued and resumed from step ${row.resumed_from_step}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});

function squeueState(env: NodeJS.ProcessEnv, task: string): string {
  return spawnSync('squeue', ['--noheader', '--array', `--jobs=${task}`, '--format=%T'], { env, encoding: 'utf8' }).stdout.trim();
}
