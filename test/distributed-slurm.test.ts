/**
 * The Slurm executor against a real single-node Slurm (munged, slurmctld, slurmd on 127.0.0.1, started here): the same
 * grid records the same rows as the local executor, submitted as one array job with the sbatch settings of the flags; a
 * task killed mid-job is resubmitted by the coordinator's retry; Ctrl-C cancels the tasks; a coordinator killed and
 * started again attaches to its tasks; an sbatch refusal fails the jobs with its message; WebDataset shards are read by
 * path in the tasks, a corrupt one failing only its job. Skipped without the Slurm packages or root (fails in CI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SlurmManifest } from '../framework/run/slurm-executor.js';
import { ROOT, writeFiles } from './helpers.js';
import { startCli } from './services/cli.js';
import { alive, waitFor } from './services/daemons.js';
import { assertSameAsLocal, recordedJobs } from './services/results.js';
import { assertShardSweep, fashionInstalled, shardSpec, writeTestShards } from './services/shards.js';
import { slurmAvailability, startSlurm, type TestSlurm } from './services/slurm.js';

const BASE = `
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 20 }
  eval: { every: 10 }
`;
/** Where the sweeps (run from the repository root) put their manifests and task outputs. */
const WORK_DIR = join(ROOT, 'results', 'slurm');
const EXPERIMENTS = ['dist-slurm', 'dist-slurm-stop', 'dist-slurm-restart', 'dist-slurm-refused', 'dist-slurm-wds'];

const availability = slurmAvailability();
if (availability.fail) test('Slurm (munge, slurmctld, slurmd, client) is installed', () => assert.fail(availability.fail!));

/** The batch directories of an experiment's sweeps, oldest first. */
function batchDirs(experiment: string): string[] {
  if (!existsSync(WORK_DIR)) return [];
  return readdirSync(WORK_DIR)
    .filter((d) => new RegExp(`^${experiment}-\\d{8}-\\d{6}-\\d+$`).test(d))
    .flatMap((d) => readdirSync(join(WORK_DIR, d)).map((b) => join(WORK_DIR, d, b)))
    .sort((a, b) => Number(/batch-(\d+)$/.exec(a)![1]) - Number(/batch-(\d+)$/.exec(b)![1]));
}

/** Running slurm-task processes of an experiment: pid and array task index. */
function taskProcesses(experiment: string): { pid: number; index: number; dir: string }[] {
  const found: { pid: number; index: number; dir: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = args.findIndex((a) => a.endsWith('framework/run/slurm-task.ts'));
      if (at < 0 || !args[at + 1]?.includes(`/${experiment}-`)) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const index = Number(env.find((e) => e.startsWith('SLURM_ARRAY_TASK_ID='))?.split('=')[1]);
      found.push({ pid: Number(entry), index, dir: args[at + 1] });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe('slurm executor', { skip: availability.skip }, () => {
  /** Temp folders of the tests (specs, databases, checkpoints), removed at the end. */
  const dirs: string[] = [];
  const files = (named: Record<string, string>): string => {
    const dir = writeFiles(named);
    dirs.push(dir);
    return dir;
  };
  let slurm: TestSlurm;
  const cleanWorkDirs = (): void => {
    for (const e of EXPERIMENTS) for (const b of batchDirs(e)) rmSync(join(b, '..'), { recursive: true, force: true });
    try {
      rmdirSync(WORK_DIR);
    } catch {
      // not empty (other sweeps' work) or not there
    }
  };

  before(async () => {
    cleanWorkDirs();
    slurm = await startSlurm();
  });
  after(async () => {
    await slurm?.stop();
    cleanWorkDirs();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('one array job with the sbatch flags records the same rows as the local executor; a killed task is resubmitted', async () => {
    const dir = files({ 'grid.yaml': `name: dist-slurm\n${BASE}\naxes:\n  mask.image_ratio: [0, 0.5]\nseeds: [0, 1]\n` });
    const spec = join(dir, 'grid.yaml');
    const local = await startCli('sweep', [spec, '--db', join(dir, 'local.db'), '--concurrency', '2', '--plain']).exited;
    assert.equal(local.code, 0, local.output);

    const t0 = Date.now();
    const flags = ['--partition', 'debug', '--time', '10', '--cpus', '1', '--mem', '200M', '--sbatch-arg=--comment=flip-distributed-test'];
    const sweep = startCli('sweep', [spec, '--db', join(dir, 'slurm.db'), '--executor', 'slurm', '--concurrency', '4', '--retries', '1', '--plain', ...flags], slurm.env);

    // Kill -9 one task's process once its job reports steps: Slurm marks the task failed, the coordinator retries it.
    let victim: { pid: number; index: number; dir: string } | undefined;
    const sweepEnded = sweep.exited.then((r) => Promise.reject(new Error(`the sweep ended before a task could be killed:\n${r.output}`)));
    await Promise.race([sweepEnded, waitFor(
      'a task that has reported a step',
      () => {
        victim = taskProcesses('dist-slurm').find((t) => {
          const out = join(t.dir, 'out', `${t.index}.jsonl`);
          return existsSync(out) && readFileSync(out, 'utf8').includes('"type":"step"');
        });
        return victim !== undefined;
      },
      120_000,
      sweep.output,
    )]);
    process.kill(victim!.pid, 'SIGKILL');
    const result = await sweep.exited;
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /dist-slurm: 4 done, 0 failed, 0 interrupted/);

    const jobs = assertSameAsLocal(join(dir, 'slurm.db'), join(dir, 'local.db'));
    const batches = batchDirs('dist-slurm');
    const manifests = batches.map((b) => JSON.parse(readFileSync(join(b, 'manifest.json'), 'utf8')) as SlurmManifest);
    const killedHash = manifests[0].jobs[victim!.index].hash;
    // The four calls of the runner were batched into one array job; the retry is a second one with the killed job.
    assert.deepEqual(manifests.map((m) => m.jobs.length), [4, 1]);
    assert.equal(manifests[1].jobs[0].hash, killedHash);
    for (const [hash, job] of jobs) assert.equal(job.attempts, hash === killedHash ? 2 : 1, `attempts of ${hash}`);
    assert.equal(jobs.get(killedHash)!.curves.loss.length, 20);

    // The flags reached sbatch.
    const submit = readFileSync(join(batches[0], 'submit.sh'), 'utf8');
    assert.match(submit, /--array=0-3 .*--partition=debug --time=10 --cpus-per-task=1 --mem=200M --comment=flip-distributed-test/);
    const arrayId = /Slurm job (\d+)_0/.exec(readFileSync(join(batches[0], 'out', '0.jsonl'), 'utf8'))?.[1];
    assert.ok(arrayId, 'the array job id in the task output');
    const show = spawnSync('scontrol', ['-o', 'show', 'job', arrayId], { env: slurm.env, encoding: 'utf8' }).stdout;
    assert.match(show, /Partition=debug/);
    assert.match(show, /TimeLimit=00:10:00/);
    assert.match(show, /Comment=flip-distributed-test/);
    console.log(`slurm sweep of 4 jobs with one task killed and resubmitted: ${seconds.toFixed(1)} s`);
  });

  test('Ctrl-C cancels the running and pending tasks', async () => {
    // 5 tasks: on a node of 4 CPUs one of them is still pending when Ctrl-C comes.
    const dir = files({ 'long.yaml': `name: dist-slurm-stop\n${BASE.replace('steps: 20', 'steps: 400')}\nseeds: [0, 1, 2, 3, 4]\n` });
    const sweep = startCli('sweep', [join(dir, 'long.yaml'), '--db', join(dir, 'r.db'), '--executor', 'slurm', '--concurrency', '5', '--plain'], slurm.env);
    await waitFor('a running task', () => taskProcesses('dist-slurm-stop').length > 0, 60_000, sweep.output);
    const tasks = taskProcesses('dist-slurm-stop');
    sweep.child.kill('SIGINT');
    const result = await sweep.exited;
    assert.equal(result.code, 130, result.output);
    assert.match(result.output, /0 done, 0 failed, 5 interrupted/);
    await waitFor('no tasks of the sweep in squeue', () => squeue(slurm.env, 'flip-dist-slurm-stop') === '', 15_000, () => squeue(slurm.env, 'flip-dist-slurm-stop'));
    await waitFor('task processes gone', () => tasks.every((t) => !alive(t.pid)), 15_000);
    const d = new Database(join(dir, 'r.db'), { readonly: true });
    assert.deepEqual(d.prepare('SELECT DISTINCT status FROM jobs').all(), [{ status: 'interrupted' }]);
    d.close();
  });

  test('a coordinator killed and restarted attaches to its tasks: nothing is submitted twice, curves are complete', async () => {
    const steps = 150;
    const dir = files({ 'two.yaml': `name: dist-slurm-restart\n${BASE.replace('steps: 20', `steps: ${steps}`)}\nseeds: [0, 1]\n` });
    const args = [join(dir, 'two.yaml'), '--db', join(dir, 'r.db'), '--executor', 'slurm', '--concurrency', '2', '--plain'];
    const first = startCli('sweep', args, slurm.env);
    await waitFor('both tasks running', () => taskProcesses('dist-slurm-restart').length === 2, 60_000, first.output);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startCli('sweep', args, slurm.env).exited;
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /dist-slurm-restart: 2 done, 0 failed/);
    assert.equal(batchDirs('dist-slurm-restart').length, 1, 'the restarted coordinator submitted nothing');
    for (const job of recordedJobs(join(dir, 'r.db')).values()) {
      assert.equal(job.status, 'done');
      assert.equal(job.curves.loss.length, steps, 'the task file was read from its start');
      assert.equal(job.duplicatePoints, 0);
    }
  });

  test('a submission sbatch refuses fails the jobs with its message', async () => {
    const dir = files({ 'one.yaml': `name: dist-slurm-refused\n${BASE}` });
    const result = await startCli('sweep', [join(dir, 'one.yaml'), '--db', join(dir, 'r.db'), '--executor', 'slurm', '--partition', 'nosuch', '--retries', '0', '--plain'], slurm.env).exited;
    assert.equal(result.code, 1, result.output);
    const d = new Database(join(dir, 'r.db'), { readonly: true });
    const row = d.prepare('SELECT status, error FROM jobs').get() as { status: string; error: string };
    d.close();
    assert.equal(row.status, 'failed');
    assert.match(row.error, /could not submit the array job .*invalid partition/i);
  });

  test('webdataset shards: the tasks read them by path, same results as local; a corrupt shard fails only its job', { skip: fashionInstalled ? false : 'Fashion-MNIST not installed' }, async () => {
    const dir = files({});
    const spec = join(dir, 'shards.yaml');
    writeFileSync(spec, shardSpec('dist-slurm-wds', await writeTestShards(dir)));
    const flags = ['--retries', '0', '--concurrency', '2', '--plain'];
    const local = await startCli('sweep', [spec, '--db', join(dir, 'local.db'), ...flags]).exited;
    assert.equal(local.code, 1, local.output);
    const result = await startCli('sweep', [spec, '--db', join(dir, 'slurm.db'), '--executor', 'slurm', ...flags], slurm.env).exited;
    assert.equal(result.code, 1, result.output);
    assert.match(result.output, /dist-slurm-wds: 1 done, 1 failed/);
    assertShardSweep(join(dir, 'slurm.db'), join(dir, 'local.db'), join(dir, 'truncated.tar'));
  });
});


function squeue(env: NodeJS.ProcessEnv, name: string): string {
  return spawnSync('squeue', ['--noheader', `--name=${name}`], { env, encoding: 'utf8' }).stdout.trim();
}
