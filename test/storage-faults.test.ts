/**
 * Storage faults under a real sweep: the results database held locked by another writer past the busy timeout, a
 * results folder on a read-only filesystem, and a full disk (a small tmpfs). Each must stop the sweep with a message
 * naming the file and what to do, a non-zero exit, and every result recorded before intact; the same command then
 * resumes once the fault is gone. (A file size limit standing in for a full disk is in bad-input.test.ts.)
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BUSY_TIMEOUT_MS } from '../framework/store/result-store.js';
import { ROOT, runCli, tempDir, until, writeFiles } from './helpers.js';

const spec = (name: string, ratios: string, steps = 6) => `name: ${name}
base:
  data: { dataset: shapes, train_size: 128, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: ${steps} }
axes:
  mask.image_ratio: [${ratios}]
`;

interface Row {
  id: number;
  status: string;
  attempts: number;
  ended_at: string | null;
  results: string;
}

/** Jobs with their results (as text, to compare), and the integrity check. */
function inspect(db: string): { jobs: Row[]; integrity: string } {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const jobs = d
      .prepare(
        `SELECT j.id, j.status, j.attempts, j.ended_at,
           (SELECT group_concat(name || '=' || value, ',') FROM (SELECT * FROM results r WHERE r.job_id = j.id ORDER BY name)) AS results
         FROM jobs j ORDER BY j.id`,
      )
      .all() as Row[];
    return { jobs, integrity: d.pragma('integrity_check', { simple: true }) as string };
  } finally {
    d.close();
  }
}

const done = (db: string): Row[] => inspect(db).jobs.filter((j) => j.status === 'done');
const digest = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
function sweep(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/sweep.ts', ...args, '--plain'], { cwd: ROOT });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise<{ code: number | null; out: string; seconds: number }>((resolve) => {
    const start = Date.now();
    child.on('exit', (code) => resolve({ code, out, seconds: (Date.now() - start) / 1000 }));
  });
}

/** Another process holding a write transaction on `db` (creating the file if need be) until it is killed. */
async function holdWriteLock(t: TestContext, db: string): Promise<ChildProcess> {
  const script = `const D = require('better-sqlite3'); const d = new D(process.argv[1]); d.exec('BEGIN IMMEDIATE'); console.log('locked'); setInterval(() => {}, 1000);`;
  const holder = spawn(process.execPath, ['-e', script, db], { cwd: ROOT });
  t.after(() => holder.kill('SIGKILL'));
  let out = '';
  holder.stdout.on('data', (b: Buffer) => (out += b.toString()));
  holder.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await until(`the lock on ${db} (${out})`, () => (out.includes('locked') ? true : undefined), 30);
  return holder;
}

/** Mounts a tmpfs at `dir` (root only); false where that is not possible. */
function mountTmpfs(t: TestContext, dir: string, options: string): boolean {
  if (process.getuid?.() !== 0) return false;
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  if (mount.status !== 0) return false;
  t.after(() => spawnSync('umount', [dir]));
  return true;
}

function remount(dir: string, options: string): void {
  const r = spawnSync('mount', ['-o', `remount,${options}`, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `remount ${options} ${dir}: ${r.stderr}`);
}

test('storage: the database held locked by another writer past the busy timeout, mid-sweep and at the start', async (t) => {
  const dir = writeFiles({ 's.yaml': spec('locked', '0, 0.25, 0.5, 0.75') });
  const db = join(dir, 'r.db');
  const running = sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1']);
  await until('a finished job', () => {
    try {
      return done(db).length > 0 ? true : undefined;
    } catch {
      return undefined;
    }
  });
  const holder = await holdWriteLock(t, db);
  const before = done(db);
  const stopped = await running;
  assert.equal(stopped.code, 1, stopped.out);
  assert.ok(stopped.seconds >= BUSY_TIMEOUT_MS / 1000, `waited the busy timeout first (${stopped.seconds} s)`);
  assert.match(
    stopped.out,
    new RegExp(`sweep stopped: the results database ${db} cannot be written: database is locked: another process has held a write transaction on it for longer than 15 s\\. What was recorded before is intact; find that process \\(\`fuser ${db}\``),
  );
  holder.kill('SIGKILL');
  const after = inspect(db);
  assert.equal(after.integrity, 'ok');
  assert.ok(before.length < 4, 'stopped before the end');
  for (const j of before) assert.deepEqual(after.jobs.find((a) => a.id === j.id), j, `finished job ${j.id} intact`);

  const resumed = await sweep([join(dir, 's.yaml'), '--db', db, '--concurrency', '1']);
  assert.equal(resumed.code, 0, resumed.out);
  const final = inspect(db).jobs;
  assert.deepEqual(final.map((j) => j.status), ['done', 'done', 'done', 'done']);
  for (const j of before) assert.deepEqual(final.find((a) => a.id === j.id), j, `finished job ${j.id} not run again`);

  // Locked before the sweep starts (here while it would create and migrate the database): nothing is written.
  const fresh = join(tempDir(), 'fresh.db');
  await holdWriteLock(t, fresh);
  const refused = await sweep([join(dir, 's.yaml'), '--db', fresh]);
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, new RegExp(`the results database ${fresh} is locked: another process has held a write transaction on it for longer than 15 s .*Nothing was changed; find that process`, 's'));
});

test('storage: a results folder on a read-only filesystem is refused naming it; the recorded results stay', (t) => {
  const dir = writeFiles({ 'a.yaml': spec('ro', '0, 0.5'), 'b.yaml': spec('ro', '0, 0.5, 0.75') });
  const folder = join(dir, 'results');
  mkdirSync(folder);
  if (!mountTmpfs(t, folder, 'size=16m')) {
    if (process.env.CI) assert.fail('cannot mount a tmpfs for this test');
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  const db = join(folder, 'r.db');
  const first = runCli('sweep', [join(dir, 'a.yaml'), '--db', db, '--plain']);
  assert.equal(first.status, 0, first.stdout + first.stderr);
  const recorded = inspect(db).jobs;
  const before = digest(db);
  remount(folder, 'ro');
  const refused = runCli('sweep', [join(dir, 'b.yaml'), '--db', db, '--plain']);
  assert.equal(refused.status, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, new RegExp(`cannot open the results database ${db}: its folder ${folder} is on a read-only filesystem \\(EROFS\\).*Nothing was changed\\. Choose a writable location with --db PATH`, 's'));
  assert.equal(digest(db), before, 'the database is untouched');
  remount(folder, 'rw');
  const resumed = runCli('sweep', [join(dir, 'b.yaml'), '--db', db, '--plain']);
  assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
  const jobs = inspect(db).jobs;
  assert.deepEqual(jobs.slice(0, 2), recorded, 'the jobs recorded before are kept, not rerun');
  assert.equal(jobs[2].status, 'done');
});

test('storage: a full disk (a small tmpfs) stops the sweep naming the file; the results recorded before stay; it resumes once there is space', async (t) => {
  const dir = writeFiles({ 'a.yaml': spec('full', '0'), 'b.yaml': spec('full', '0.25, 0.5', 20) });
  const folder = join(dir, 'results');
  mkdirSync(folder);
  if (!mountTmpfs(t, folder, 'size=2m')) {
    if (process.env.CI) assert.fail('cannot mount a tmpfs for this test');
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  // The checkpoints (beside the database) live elsewhere: here only the database fills the disk.
  mkdirSync(join(dir, 'checkpoints'));
  symlinkSync(join(dir, 'checkpoints'), join(folder, 'checkpoints'));
  const db = join(folder, 'r.db');
  const first = await sweep([join(dir, 'a.yaml'), '--db', db]);
  assert.equal(first.code, 0, first.out);
  const recorded = inspect(db).jobs;
  // Leave 64 KiB: the -shm file (32 KiB) and a few WAL frames fit, the next sweep's writes soon do not.
  const { bavail, bsize } = statfsSync(folder);
  const filler = join(folder, 'filler');
  writeFileSync(filler, Buffer.alloc(bavail * bsize - 64 * 1024));
  const full = await sweep([join(dir, 'b.yaml'), '--db', db, '--concurrency', '1']);
  assert.equal(full.code, 1, full.out);
  assert.match(
    full.out,
    new RegExp(
      `sweep stopped: the results database ${db} cannot be written: (database or disk is full|disk I/O error) \\(is the disk full, or a file size limit reached\\?\\)\\. ` +
        `What was recorded before is intact; free space in ${folder} and run the same command again to resume\\.`,
    ),
  );
  const after = inspect(db);
  assert.equal(after.integrity, 'ok');
  assert.deepEqual(after.jobs[0], recorded[0], 'the result recorded before is intact');
  assert.ok(after.jobs.slice(1).some((j) => j.status !== 'done'), 'stopped before the end');
  rmSync(filler);
  const resumed = await sweep([join(dir, 'b.yaml'), '--db', db, '--concurrency', '1']);
  assert.equal(resumed.code, 0, resumed.out);
  const jobs = inspect(db).jobs;
  assert.deepEqual(jobs[0], recorded[0], 'not rerun');
  assert.deepEqual(jobs.slice(1).map((j) => j.status), ['done', 'done']);
});
