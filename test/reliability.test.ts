/**
 * Faults injected into real sweeps: the coordinator killed with SIGKILL at several points, jobs that crash, hang or
 * diverge, two sweeps on one database, and readers during a sweep. The database must stay whole and every job must
 * end done exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, runCli, writeFiles } from './helpers.js';

const tiny = (name: string, steps: number, axes = 'mask.image_ratio: [0, 0.5, 0.75]') => `name: ${name}
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: ${steps} }
axes:
  ${axes}
`;

interface JobRecord {
  id: number;
  status: string;
  attempts: number;
  ended_at: string | null;
  error: string | null;
  last_step: number | null;
  results: number;
}

function inspect(db: string): { jobs: JobRecord[]; integrity: string } {
  const d = new Database(db, { readonly: true });
  const jobs = d
    .prepare('SELECT j.id, j.status, j.attempts, j.ended_at, j.error, j.last_step, (SELECT COUNT(*) FROM results r WHERE r.job_id = j.id) AS results FROM jobs j ORDER BY j.id')
    .all() as JobRecord[];
  const integrity = (d.pragma('integrity_check', { simple: true }) as string) ?? '';
  d.close();
  return { jobs, integrity };
}

/** Starts a sweep; resolves with its exit code and output. `onOutput` may kill it. */
function sweep(args: string[], env: NodeJS.ProcessEnv = {}, onOutput?: (out: string, kill: (sig: NodeJS.Signals) => void) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/sweep.ts', ...args, '--plain'], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  const kill = (sig: NodeJS.Signals) => child.kill(sig);
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    onOutput?.(out, kill);
  });
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out })));
}

function assertAllDoneOnce(db: string, expectedJobs: number) {
  const { jobs, integrity } = inspect(db);
  assert.equal(integrity, 'ok');
  assert.equal(jobs.length, expectedJobs);
  const resultCounts = new Set(jobs.map((j) => j.results));
  assert.deepEqual(jobs.map((j) => j.status), Array(expectedJobs).fill('done'));
  assert.equal(resultCounts.size, 1, `every job has the same complete set of results: ${[...resultCounts]}`);
  return jobs;
}

test('coordinator killed with SIGKILL during a job: the job is detected and rerun, nothing else is retrained', async () => {
  // Long enough that the coordinator's once-a-second metric flush lands mid-training on a fast machine too.
  const dir = writeFiles({ 's.yaml': tiny('kill-during', 500) });
  const db = join(dir, 'r.db');
  let watching = false;
  // Killed once job 2 has recorded training steps (not after a fixed delay: how far a job gets in a given time
  // depends on the machine and the trainer's speed).
  const first = await sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1'], {}, (out, kill) => {
    if (watching || !/\[job 2\] start/.test(out)) return;
    watching = true;
    const poll = setInterval(() => {
      if ((inspect(db).jobs[1]?.last_step ?? 0) < 1) return;
      clearInterval(poll);
      kill('SIGKILL');
    }, 20);
  });
  assert.equal(first.signal, 'SIGKILL', first.out);
  const before = inspect(db).jobs;
  assert.deepEqual(before.map((j) => j.status), ['done', 'running', 'pending']);
  assert.ok((before[1].last_step ?? 0) >= 1 && (before[1].last_step ?? 0) < 500, `killed during training: last step ${before[1].last_step}`);
  const second = await sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1']);
  assert.equal(second.code, 0, second.out);
  const after = assertAllDoneOnce(db, 3);
  assert.equal(after[0].ended_at, before[0].ended_at, 'the finished job was not retrained');
  assert.deepEqual(after.map((j) => j.attempts), [1, 2, 1]);
});

test('coordinator killed between jobs and while writing a result: the database stays whole and the rerun completes', async () => {
  for (const fault of ['kill-after-job@1', 'kill-while-writing@1']) {
    const dir = writeFiles({ 's.yaml': tiny('kill-write', 8) });
    const db = join(dir, 'r.db');
    const first = await sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1'], { FLIP_SWEEP_COORDINATOR_FAULT: fault });
    assert.equal(first.signal, 'SIGKILL', `${fault}: ${first.out}`);
    const before = inspect(db);
    assert.equal(before.integrity, 'ok');
    if (fault.startsWith('kill-after-job')) {
      assert.equal(before.jobs[0].status, 'done');
      assert.ok(before.jobs[0].results > 0);
    } else {
      // The transaction never committed: no half-written job (no results without 'done').
      assert.equal(before.jobs[0].status, 'running');
      assert.equal(before.jobs[0].results, 0);
    }
    const second = await sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1']);
    assert.equal(second.code, 0, second.out);
    const after = assertAllDoneOnce(db, 3);
    assert.equal(after[0].attempts, fault.startsWith('kill-after-job') ? 1 : 2, fault);
  }
});

test('a job that diverges (NaN), hangs past --job-timeout or is killed is failed with its reason and last step; the rest of the sweep continues', async () => {
  const cases = [
    { fault: 'nan@4,seed=1', args: [], reason: /non-finite loss at step 4.*\(last step 3\)/s },
    { fault: 'hang@3,seed=1', args: ['--job-timeout', '25'], reason: /timed out after 25 s \(--job-timeout\) \(last step [23]\)/ },
    { fault: 'crash@3,seed=1', args: [], reason: /killed by SIGKILL before reporting a result.*\(last step [23]\)/s },
  ];
  for (const c of cases) {
    const dir = writeFiles({ 's.yaml': tiny('faulty', 8, 'mask.image_ratio: [0]\nseeds: [0, 1]') });
    const db = join(dir, 'r.db');
    const run = await sweep([join(dir, 's.yaml'), '--db', db, '--retries', '1', ...c.args], { FLIP_SWEEP_FAULT: c.fault });
    assert.equal(run.code, 1, run.out);
    const { jobs, integrity } = inspect(db);
    assert.equal(integrity, 'ok');
    assert.deepEqual(jobs.map((j) => j.status), ['done', 'failed'], c.fault);
    assert.equal(jobs[1].attempts, 2, `${c.fault}: retried once`);
    assert.match(String(jobs[1].error), c.reason);
    assert.match(run.out, /1 done, 1 failed/);
  }
});

test('two sweeps on one database at once: different experiments, and the same experiment twice, without lock errors or double runs', async () => {
  const dir = writeFiles({ 'a.yaml': tiny('exp-a', 10), 'b.yaml': tiny('exp-b', 10) });
  const db = join(dir, 'r.db');
  // The two sweeps of exp-a share its jobs; with --wait each also waits for those the other runs (without, the one
  // ending first would exit 3: jobs not done).
  const [a, b, a2] = await Promise.all([
    sweep([join(dir, 'a.yaml'), '--db', db, '--concurrency', '1', '--wait']),
    sweep([join(dir, 'b.yaml'), '--db', db, '--concurrency', '1']),
    sweep([join(dir, 'a.yaml'), '--db', db, '--concurrency', '1', '--wait']),
  ]);
  for (const r of [a, b, a2]) {
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /database is locked|SQLITE_BUSY/);
  }
  const jobs = assertAllDoneOnce(db, 6);
  assert.deepEqual(jobs.map((j) => j.attempts), [1, 1, 1, 1, 1, 1], 'no job ran twice');
});

test('readers during a sweep neither block it nor see a half-written job', async () => {
  // Two kinds of reader: the query CLI in its own process (as a person would read), and a direct read-only connection
  // polled often. The sweep is long enough (a few seconds) that both read many times while it runs; the counts
  // asserted are small so that a fast machine passes too (CI once finished a 20-step sweep after two CLI reads).
  const dir = writeFiles({ 's.yaml': tiny('read-while', 400) });
  const db = join(dir, 'r.db');
  const running = sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '2']);
  let exited = false;
  void running.then(() => (exited = true));
  const check = (rows: { status: string; n: number }[], who: string) => {
    for (const row of rows) assert.ok(row.status === 'done' ? row.n > 0 : row.n === 0, `${who}: a ${row.status} job with ${row.n} results`);
  };
  const sql = 'SELECT j.status, (SELECT COUNT(*) FROM results r WHERE r.job_id = j.id) AS n FROM jobs j';
  let cliReads = 0;
  let directReads = 0;
  let cliInFlight: Promise<void> | undefined;
  const cliRead = () =>
    new Promise<void>((resolve, reject) => {
      const q = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/query.ts', sql, '--db', db, '--format', 'json'], { cwd: ROOT });
      let stdout = '';
      q.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      q.on('exit', (code) => {
        try {
          // Before the sweep has created the database the CLI fails ("no such database file"); that is not a read.
          if (code === 0) {
            check(JSON.parse(stdout), 'query CLI');
            if (!exited) cliReads++;
          }
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
  while (!exited) {
    await new Promise((r) => setTimeout(r, 100));
    cliInFlight ??= cliRead().finally(() => (cliInFlight = undefined));
    let d: Database.Database;
    try {
      d = new Database(db, { readonly: true, fileMustExist: true });
    } catch {
      continue; // not created yet
    }
    try {
      check(d.prepare(sql).all() as { status: string; n: number }[], 'direct reader');
      if (!exited) directReads++;
    } catch (err) {
      // The schema may not be there yet in the first instants; anything else is a failure.
      if (!/no such table/.test(String(err))) throw err;
    } finally {
      d.close();
    }
  }
  await cliInFlight;
  const result = await running;
  assert.equal(result.code, 0, result.out);
  assert.ok(directReads >= 5, `the direct reader read ${directReads} times during the sweep`);
  assert.ok(cliReads >= 1, `the query CLI read ${cliReads} times during the sweep`);
  assertAllDoneOnce(db, 3);
});
