/**
 * Job ownership as a lease, through the real CLI: a sweep killed with SIGKILL (its whole process group, leaving its
 * coordinator a zombie nobody reaps) is taken over at once by the next sweep; a sweep that ends with jobs another live
 * sweep runs says so and exits 3, or with --wait waits for them; a paused sweep loses its job once its lease expires.
 * Also the process identity behind "provably dead".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isProcessAlive, processStartTicks } from '../framework/run/process-identity.js';
import { LEASE_SECONDS } from '../framework/store/result-store.js';
import { ROOT, until, writeFiles } from './helpers.js';

const SWEEP = ['--import', 'tsx', join(ROOT, 'framework/cli/sweep.ts')];

const spec = (name: string, axes: string, steps = 6) => `name: ${name}
base:
  data: { dataset: shapes, train_size: 128, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: ${steps} }
axes:
  ${axes}
`;

interface JobState {
  id: number;
  status: string;
  attempts: number;
  ended_at: string | null;
  results: number;
}

function jobStates(db: string): JobState[] {
  try {
    const d = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return d
        .prepare('SELECT j.id, j.status, j.attempts, j.ended_at, (SELECT COUNT(*) FROM results r WHERE r.job_id = j.id) AS results FROM jobs j ORDER BY j.id')
        .all() as JobState[];
    } finally {
      d.close();
    }
  } catch {
    return []; // not created (or not migrated) yet
  }
}

/** The last renewal before a pause may come up to one renewal period (5 s) before it. */
const RENEW_SLACK_SECONDS = 5;

/** The tests read /proc (process states, a coordinator's children). */
const linuxOnly = { skip: process.platform !== 'linux' && 'needs /proc' };

/** /proc/PID/stat's state letter, or null once the pid is gone. */
function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** The job process a coordinator forked (not the esbuild service it also runs), if any. */
function jobProcessOf(pid: number): number | undefined {
  const found = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .find((name) => {
      try {
        const text = readFileSync(`/proc/${name}/stat`, 'utf8');
        const parent = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('job-process');
      } catch {
        return false;
      }
    });
  return found === undefined ? undefined : Number(found);
}

/** A sweep in its own process group, with its output collected. */
function startSweep(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [...SWEEP, ...args, '--plain'], { cwd: ROOT, env: { ...process.env, ...env }, detached: true });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, out })),
  );
  return { child, output: () => out, exit };
}

function killGroup(child: ChildProcess | number, signal: NodeJS.Signals = 'SIGKILL'): void {
  const pid = typeof child === 'number' ? child : child.pid!;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

test('process identity: a zombie, a missing pid and a reused pid are dead; the recorded process is alive', linuxOnly, async (t) => {
  // `sleep 0` exits at once and its parent (sh exec'd into `sleep 30`) never reaps it: a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30']);
  t.after(() => parent.kill('SIGKILL'));
  let text = '';
  parent.stdout.on('data', (b: Buffer) => (text += b.toString()));
  const zombie = await until('the zombie pid', () => (/^\d+\n/.test(text) ? Number(text) : undefined), 20);
  await until('the child to become a zombie', () => (procState(zombie) === 'Z' ? true : undefined), 20);
  assert.doesNotThrow(() => process.kill(zombie, 0), 'the trap: signal 0 succeeds on a zombie');
  assert.equal(isProcessAlive(zombie, null), false);

  const self = processStartTicks(process.pid);
  assert.ok(self !== null && self > 0, `start time of this process: ${self}`);
  assert.equal(isProcessAlive(process.pid, self), true);
  assert.equal(isProcessAlive(process.pid, null), true);
  assert.equal(isProcessAlive(process.pid, self + 1), false, 'the same pid started at another time is another process');
  assert.equal(isProcessAlive(parent.pid!, processStartTicks(parent.pid!)), true);
  assert.equal(isProcessAlive(4_000_000, null), false);
});

test('five rounds of kill -9 of the sweep process group, each rerun at once: every job finishes exactly once, none retrained', linuxOnly, async (t) => {
  const dir = writeFiles({ 's.yaml': spec('lease-kill', 'mask.image_ratio: [0, 0.25, 0.5, 0.75]\nseeds: [0, 1]') });
  const db = join(dir, 'r.db');
  const total = 8;
  /** Jobs found 'running' right after each kill: each must be run once more, and only those. */
  const runningAtKill = new Map<number, number>();
  const doneAt = new Map<number, string>();
  let starts = '';
  const holders: ChildProcess[] = [];
  t.after(() => holders.forEach((h) => h.kill('SIGKILL')));
  for (let round = 1; round <= 5; round++) {
    // The sweep gets its own process group (setsid), and a parent that never reaps it (sh exec'd into sleep): killed,
    // it stays a zombie, which `process.kill(pid, 0)` reports alive.
    const holder = spawn('sh', ['-c', `setsid "${process.execPath}" ${SWEEP.map((a) => `"${a}"`).join(' ')} "${join(dir, 's.yaml')}" --db "${db}" --concurrency 1 --plain > "${join(dir, `out-${round}.txt`)}" 2>&1 & echo $!; exec sleep 600`], {
      cwd: ROOT,
    });
    holders.push(holder);
    let text = '';
    holder.stdout.on('data', (b: Buffer) => (text += b.toString()));
    const pid = await until('the sweep pid', () => (/^\d+\n/.test(text) ? Number(text) : undefined), 20);
    const doneBefore = jobStates(db).filter((j) => j.status === 'done').length;
    // Right after this round's sweep has finished a job (or two) of its own.
    await until(`round ${round}: a job finished`, () => (jobStates(db).filter((j) => j.status === 'done').length > doneBefore ? true : undefined));
    killGroup(pid);
    await until(`round ${round}: the coordinator to be a zombie`, () => (procState(pid) === 'Z' ? true : undefined), 20);
    starts += readFileSync(join(dir, `out-${round}.txt`), 'utf8');
    const states = jobStates(db);
    assert.ok(states.filter((j) => j.status === 'done').length < total, `round ${round}: killed before the sweep ended`);
    for (const j of states) {
      if (j.status === 'running') runningAtKill.set(j.id, (runningAtKill.get(j.id) ?? 0) + 1);
      if (j.status === 'done' && !doneAt.has(j.id)) doneAt.set(j.id, j.ended_at!);
    }
  }
  assert.ok(runningAtKill.size > 0, 'some kill landed while a job ran (else nothing was taken over)');

  const last = startSweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1']);
  const final = await last.exit;
  starts += final.out;
  assert.equal(final.code, 0, final.out);
  assert.doesNotMatch(final.out, /left to it|not done/);
  const states = jobStates(db);
  assert.equal(states.length, total);
  for (const j of states) {
    assert.equal(j.status, 'done', `job ${j.id}`);
    assert.ok(j.results > 0, `job ${j.id} has its results`);
    // One attempt, plus one for each kill that found it running; a finished job is never run again.
    assert.equal(j.attempts, 1 + (runningAtKill.get(j.id) ?? 0), `job ${j.id}: attempts`);
    if (doneAt.has(j.id)) assert.equal(j.ended_at, doneAt.get(j.id), `job ${j.id} kept the result of its first finish`);
    const started = starts.match(new RegExp(`^\\[job ${j.id}\\] start `, 'gm'))?.length ?? 0;
    assert.equal(started, j.attempts, `job ${j.id}: training starts in the sweeps' output`);
  }
});

test('a sweep that ends with jobs another live sweep runs exits 3 saying so; with --wait it waits until that sweep finishes them', linuxOnly, async (t) => {
  const dir = writeFiles({ 's.yaml': spec('lease-busy', 'mask.image_ratio: [0, 0.5, 0.75]') });
  const db = join(dir, 'r.db');
  const args = [join(dir, 's.yaml'), '--db', db, '--concurrency', '1'];
  const owner = startSweep(args);
  t.after(() => killGroup(owner.child));
  // Job 1's process is paused (SIGSTOP) while its coordinator lives on and keeps its lease.
  await until('job 1 running', () => (jobStates(db)[0]?.status === 'running' ? true : undefined));
  const jobProcess = await until('the job process', () => jobProcessOf(owner.child.pid!), 30);
  process.kill(jobProcess, 'SIGSTOP');

  const other = await startSweep(args).exit;
  assert.equal(other.code, 3, other.out);
  assert.match(other.out, /1 jobs are running in another live sweep and are left to it/);
  assert.match(other.out, /2 done, 0 failed, 0 interrupted, 0 already done before, 1 not done: left to another live sweep/);
  assert.match(other.out, /1 jobs are not done: another live sweep of lease-busy runs them.*Run the same command with --wait/s);
  assert.deepEqual(jobStates(db).map((j) => j.status), ['running', 'done', 'done']);

  const waiting = startSweep([...args, '--wait']);
  t.after(() => killGroup(waiting.child));
  await until('the --wait sweep to wait', () => (/left to it \(--wait: waiting for them\)/.test(waiting.output()) ? true : undefined));
  process.kill(jobProcess, 'SIGCONT');
  const waited = await waiting.exit;
  assert.equal(waited.code, 0, waited.out);
  assert.match(waited.out, /0 done, 0 failed, 0 interrupted, 2 already done before, 1 done by another sweep/);
  const first = await owner.exit;
  assert.equal(first.code, 0, first.out);
  assert.match(first.out, /1 done, 0 failed, 0 interrupted, 0 already done before, 2 done by another sweep/);
  assert.deepEqual(jobStates(db).map((j) => [j.status, j.attempts]), [['done', 1], ['done', 1], ['done', 1]], 'no job ran twice');
});

test('--wait takes over the jobs of the sweep it waits for when that sweep dies', linuxOnly, async (t) => {
  const dir = writeFiles({ 's.yaml': spec('lease-wait-dies', 'mask.image_ratio: [0]') });
  const db = join(dir, 'r.db');
  const args = [join(dir, 's.yaml'), '--db', db];
  const owner = startSweep(args);
  t.after(() => killGroup(owner.child));
  await until('job 1 running', () => (jobStates(db)[0]?.status === 'running' ? true : undefined));
  const jobProcess = await until('the job process', () => jobProcessOf(owner.child.pid!), 30);
  process.kill(jobProcess, 'SIGSTOP');

  const waiting = startSweep([...args, '--wait']);
  t.after(() => killGroup(waiting.child));
  await until('the --wait sweep to wait', () => (/--wait: waiting for them/.test(waiting.output()) ? true : undefined));
  killGroup(owner.child);
  assert.equal((await owner.exit).signal, 'SIGKILL');
  const waited = await waiting.exit;
  assert.equal(waited.code, 0, waited.out);
  assert.match(waited.out, /--wait: 1 jobs the other sweep left not done are run here/);
  assert.match(waited.out, /1 done, 0 failed, 0 interrupted, 0 already done before/);
  assert.deepEqual(jobStates(db).map((j) => [j.status, j.attempts]), [['done', 2]]);
});

test('a sweep that stops answering (paused) loses its job once its lease expires; back, it writes nothing of it', linuxOnly, async (t) => {
  const dir = writeFiles({ 's.yaml': spec('lease-expiry', 'mask.image_ratio: [0]') });
  const db = join(dir, 'r.db');
  const args = [join(dir, 's.yaml'), '--db', db];
  const paused = startSweep(args);
  t.after(() => killGroup(paused.child));
  await until('job 1 running', () => (jobStates(db)[0]?.status === 'running' ? true : undefined));
  // The whole sweep (coordinator and job process) stops, alive but silent, as on a suspended machine.
  killGroup(paused.child, 'SIGSTOP');
  const stoppedAt = Date.now();

  const waiting = await startSweep([...args, '--wait']).exit;
  assert.equal(waiting.code, 0, waiting.out);
  assert.match(waiting.out, /1 jobs are running in another live sweep and are left to it \(--wait: waiting for them\)/);
  assert.match(waiting.out, /--wait: 1 jobs the other sweep left not done are run here/);
  const waited = (Date.now() - stoppedAt) / 1000;
  assert.ok(waited >= LEASE_SECONDS - RENEW_SLACK_SECONDS && waited < 3 * LEASE_SECONDS, `taken over after the lease expired: ${waited} s`);
  const taken = jobStates(db);
  assert.deepEqual(taken.map((j) => [j.status, j.attempts]), [['done', 2]]);

  killGroup(paused.child, 'SIGCONT');
  const back = await paused.exit;
  assert.equal(back.code, 0, back.out);
  assert.match(back.out, /its lease expired and another sweep took the job over/);
  assert.match(back.out, /0 done, 0 failed, 0 interrupted, 0 already done before, 1 done by another sweep/);
  assert.deepEqual(jobStates(db), taken, 'the paused sweep wrote nothing over the result of the sweep that took over');
});
