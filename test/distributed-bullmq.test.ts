/**
 * The BullMQ executor against a real redis-server on 127.0.0.1 with real worker processes (`npm run worker`): the same
 * grid records the same rows as the local executor, a worker killed mid-job loses nothing, Ctrl-C empties the queue,
 * a coordinator killed and started again attaches to its jobs, and a failing job is retried by the coordinator (one
 * BullMQ attempt each); WebDataset shards are read by path on the workers, a corrupt one failing only its job. Skipped
 * without redis-server (fails in CI).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import Database from 'better-sqlite3';
import { QUEUE_NAME, QUEUE_PREFIX } from '../framework/run/bullmq-executor.js';
import { ROOT, writeFiles } from './helpers.js';
import { startCli, type RunningCli } from './services/cli.js';
import { sleep, stopProcess, waitFor } from './services/daemons.js';
import { redisAvailability, startRedis, type TestRedis } from './services/redis.js';
import { assertSameAsLocal, recordedJobs } from './services/results.js';
import { assertShardSweep, fashionInstalled, shardSpec, writeTestShards } from './services/shards.js';

const BASE = `
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 20 }
  eval: { every: 10 }
`;
/** A worker silent this long loses its job to another worker (short for the test; 30 s by default). */
const LOCK_SECONDS = '4';

const availability = redisAvailability();
if (availability.fail) test('redis-server is installed', () => assert.fail(availability.fail!));

describe('bullmq executor', { skip: availability.skip }, () => {
  /** Temp folders of the tests (specs, databases, checkpoints), removed at the end. */
  const dirs: string[] = [];
  const files = (named: Record<string, string>): string => {
    const dir = writeFiles(named);
    dirs.push(dir);
    return dir;
  };
  let redis: TestRedis;
  const workers: RunningCli[] = [];
  const startWorker = (name: string, env: NodeJS.ProcessEnv = process.env, cwd = ROOT): RunningCli => {
    const w = startCli('worker', ['--redis', redis.url, '--lock-seconds', LOCK_SECONDS, '--name', name], env, cwd);
    workers.push(w);
    return w;
  };
  const stopWorkers = async (): Promise<void> => {
    for (const w of workers.splice(0)) await stopProcess(w.child, 5000);
  };
  const queueCounts = async (): Promise<Record<string, number>> => {
    const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    try {
      return await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    } finally {
      await queue.close();
    }
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await stopWorkers();
    await redis?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('the same grid records the same rows as the local executor, even with a worker killed mid-job', async () => {
    const dir = files({ 'grid.yaml': `name: dist-bullmq\n${BASE}\naxes:\n  mask.image_ratio: [0, 0.5]\nseeds: [0, 1]\n` });
    const spec = join(dir, 'grid.yaml');
    const local = await startCli('sweep', [spec, '--db', join(dir, 'local.db'), '--concurrency', '2', '--plain']).exited;
    assert.equal(local.code, 0, local.output);

    const w1 = startWorker('w1');
    const w2 = startWorker('w2');
    await Promise.all([w1.waitForLine(/listening on queue/), w2.waitForLine(/listening on queue/)]);
    const t0 = Date.now();
    const sweep = startCli('sweep', [spec, '--db', join(dir, 'bullmq.db'), '--executor', 'bullmq', '--redis', redis.url, '--concurrency', '4', '--plain']);

    // Kill w1 while its first job trains: the job's lock expires and w2 runs it again.
    const started = await w1.waitForLine(/job \w+ \(dist-bullmq\) started on/);
    const hash = /job (\w+)/.exec(started)![1];
    await sleep(500);
    w1.child.kill('SIGKILL');
    const result = await sweep.exited;
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /dist-bullmq: 4 done, 0 failed, 0 interrupted/);
    assert.doesNotMatch(w1.output(), new RegExp(`job ${hash} done`), 'the killed worker did not finish the job');
    assert.match(w2.output(), new RegExp(`job ${hash} \\(dist-bullmq\\) taken \\(start 2: its previous worker was lost\\)`));
    assert.match(w2.output(), new RegExp(`job ${hash} done`));

    const jobs = assertSameAsLocal(join(dir, 'bullmq.db'), join(dir, 'local.db'));
    // Picked up again by BullMQ, not retried by the coordinator: one attempt, each step recorded once.
    assert.deepEqual([...jobs.values()].map((j) => j.attempts), [1, 1, 1, 1]);
    assert.equal(jobs.get(hash)!.curves.loss.length, 20);
    assert.deepEqual(await queueCounts(), { wait: 0, active: 0, delayed: 0, prioritized: 0 });
    console.log(`bullmq sweep of 4 jobs with one worker killed: ${seconds.toFixed(1)} s`);
    await stopWorkers();
  });

  test('Ctrl-C stops the running jobs on the workers and leaves nothing in the queue', async () => {
    const dir = files({ 'long.yaml': `name: dist-bullmq-stop\n${BASE.replace('steps: 20', 'steps: 400')}\nseeds: [0, 1, 2]\n` });
    const w1 = startWorker('w1');
    const w2 = startWorker('w2');
    await Promise.all([w1.waitForLine(/listening on queue/), w2.waitForLine(/listening on queue/)]);
    const sweep = startCli('sweep', [join(dir, 'long.yaml'), '--db', join(dir, 'r.db'), '--executor', 'bullmq', '--redis', redis.url, '--concurrency', '3', '--plain']);
    await Promise.all([w1.waitForLine(/started on/), w2.waitForLine(/started on/)]);
    sweep.child.kill('SIGINT');
    const result = await sweep.exited;
    assert.equal(result.code, 130, result.output);
    assert.match(result.output, /0 done, 0 failed, 3 interrupted/);
    // Two jobs were running (cancelled on their workers), one waiting (removed).
    await Promise.all([w1.waitForLine(/stopped: stopped by the sweep coordinator/, 10_000), w2.waitForLine(/stopped: stopped by the sweep coordinator/, 10_000)]);
    assert.deepEqual(await queueCounts(), { wait: 0, active: 0, delayed: 0, prioritized: 0 });
    const d = new Database(join(dir, 'r.db'), { readonly: true });
    assert.deepEqual(d.prepare('SELECT status FROM jobs').all(), [{ status: 'interrupted' }, { status: 'interrupted' }, { status: 'interrupted' }]);
    d.close();
    await stopWorkers();
  });

  test('a coordinator killed and restarted attaches to the running jobs: nothing runs twice, curves are complete', async () => {
    const steps = 150;
    const dir = files({ 'two.yaml': `name: dist-bullmq-restart\n${BASE.replace('steps: 20', `steps: ${steps}`)}\nseeds: [0, 1]\n` });
    const args = [join(dir, 'two.yaml'), '--db', join(dir, 'r.db'), '--executor', 'bullmq', '--redis', redis.url, '--concurrency', '2', '--plain'];
    const w1 = startWorker('w1');
    const w2 = startWorker('w2');
    await Promise.all([w1.waitForLine(/listening on queue/), w2.waitForLine(/listening on queue/)]);
    const first = startCli('sweep', args);
    await Promise.all([w1.waitForLine(/started on/), w2.waitForLine(/started on/)]);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startCli('sweep', args).exited;
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /dist-bullmq-restart: 2 done, 0 failed/);
    const taken = (w1.output() + w2.output()).match(/\(dist-bullmq-restart\) taken/g) ?? [];
    assert.equal(taken.length, 2, `each job ran once:\n${w1.output()}\n${w2.output()}`);
    for (const job of recordedJobs(join(dir, 'r.db')).values()) {
      assert.equal(job.status, 'done');
      assert.equal(job.curves.loss.length, steps, 'the steps before the restart were replayed from the job log');
      assert.equal(job.duplicatePoints, 0);
    }
    await stopWorkers();
  });

  test('a job that fails is retried by the coordinator (--retries), after a backoff, one BullMQ attempt each', async () => {
    const dir = files({ 'one.yaml': `name: dist-bullmq-retry\n${BASE}` });
    const w = startWorker('faulty', { ...process.env, FLIP_SWEEP_FAULT: 'nan@3' });
    await w.waitForLine(/listening on queue/);
    const result = await startCli('sweep', [join(dir, 'one.yaml'), '--db', join(dir, 'r.db'), '--executor', 'bullmq', '--redis', redis.url, '--retries', '1', '--plain']).exited;
    assert.equal(result.code, 1, result.output);
    assert.match(result.output, /0 done, 1 failed/);
    const [job] = [...recordedJobs(join(dir, 'r.db')).values()];
    assert.equal(job.attempts, 2);
    // The worker ran it twice, each time as a fresh single-attempt BullMQ job.
    await waitFor('two failures in the worker log', () => (w.output().match(/error: non-finite loss at step 3/g) ?? []).length === 2, 5000, w.output);
    const d = new Database(join(dir, 'r.db'), { readonly: true });
    assert.match(String((d.prepare('SELECT error FROM jobs').get() as { error: string }).error), /non-finite loss at step 3/);
    d.close();
    await stopWorkers();
  });

  test('webdataset shards: the workers read them by path, same results as local; a corrupt shard fails only its job', { skip: fashionInstalled ? false : 'Fashion-MNIST not installed' }, async () => {
    const dir = files({});
    const spec = join(dir, 'shards.yaml');
    // The good cell's pattern is relative to the sweep's folder (the repository root); the worker runs in another
    // folder, so it reads the right shards only because the spec's paths were made absolute when it was loaded.
    writeFileSync(spec, shardSpec('dist-bullmq-wds', await writeTestShards(dir), ROOT));
    const flags = ['--retries', '0', '--concurrency', '2', '--plain'];
    const local = await startCli('sweep', [spec, '--db', join(dir, 'local.db'), ...flags]).exited;
    assert.equal(local.code, 1, local.output);
    const w = startWorker('w1', process.env, join(ROOT, 'test'));
    await w.waitForLine(/listening on queue/);
    const result = await startCli('sweep', [spec, '--db', join(dir, 'bullmq.db'), '--executor', 'bullmq', '--redis', redis.url, ...flags]).exited;
    assert.equal(result.code, 1, result.output);
    assert.match(result.output, /dist-bullmq-wds: 1 done, 1 failed/);
    assertShardSweep(join(dir, 'bullmq.db'), join(dir, 'local.db'), join(dir, 'truncated.tar'));
    await stopWorkers();
  });
});
