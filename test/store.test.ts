import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JobOwnershipLost, LEASE_SECONDS, LOG_HEAD_LINES, LOG_LINE_CHARS, LOG_TAIL_LINES, ResultStore, StoreError } from '../framework/store/result-store.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../framework/store/schema.js';
import { spawn } from 'node:child_process';
import { ROOT, tempDir } from './helpers.js';

function freshStore() {
  const path = join(tempDir(), 'sub', 'results.db');
  const store = ResultStore.open(path);
  const experimentId = store.upsertExperiment({ name: 'e', description: '', spec_path: null, spec_yaml: null, spec_resolved: {} });
  const [job] = store.syncJobs(experimentId, [{ cell_index: 0, config: { a: 1 }, config_hash: 'h1', labels: { x: '1' }, seed: 0 }]);
  return { path, store, experimentId, job };
}

test('store: creates the folder, WAL mode, current schema version', () => {
  const { path, store } = freshStore();
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  store.close();
  const reader = ResultStore.open(path, { readonly: true });
  assert.equal((reader.db.prepare('SELECT COUNT(*) n FROM jobs').get() as { n: number }).n, 1);
  reader.close();
});

test('store: syncJobs adds new cells as pending and keeps the state of known ones', () => {
  const { store, experimentId, job } = freshStore();
  store.startAttempt(job.id, { host: 'h', pid: process.pid, git_commit: null });
  store.finishJob(job.id, { zero_shot_top1: 0.5 }, [{ step: 1, name: 'loss', value: 2, elapsed_seconds: 0.1 }], 1);
  const rows = store.syncJobs(experimentId, [
    { cell_index: 0, config: { a: 1 }, config_hash: 'h1', labels: { x: '1' }, seed: 0 },
    { cell_index: 1, config: { a: 2 }, config_hash: 'h2', labels: { x: '2' }, seed: 0 },
  ]);
  assert.deepEqual(rows.map((r) => r.status), ['done', 'pending']);
  assert.equal(rows[0].attempts, 1);
  assert.equal(rows[0].last_step, 1);
});

test('store: a new attempt clears the results of the previous one, and its curve when training starts (from step 0, or after the step it resumed from)', () => {
  const { store, job } = freshStore();
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: 'abc' });
  store.appendMetrics(job.id, [{ step: 1, name: 'loss', value: 3, elapsed_seconds: 1 }], 1);
  store.endAttempt(job.id, 'failed', 'boom', [{ step: 2, name: 'loss', value: NaN, elapsed_seconds: 2 }], 2);
  const failed = store.job(job.id);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'boom');
  assert.equal(failed.last_step, 2);
  assert.deepEqual(store.db.prepare('SELECT value FROM metrics WHERE job_id = ? ORDER BY step').all(job.id), [{ value: 3 }, { value: null }]);
  const steps = () => (store.db.prepare('SELECT step FROM metrics WHERE job_id = ? ORDER BY step').all(job.id) as { step: number }[]).map((r) => r.step);
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: 'abc' });
  assert.equal(store.job(job.id).attempts, 2);
  store.trainingStarted(job.id, 'wasm', 'cpu', null);
  assert.deepEqual(steps(), [], 'a start from step 0 clears the curve');
  assert.equal(store.job(job.id).resumed_from_step, null);
  // A third attempt that resumes from the state of step 1 keeps the points up to it.
  store.appendMetrics(job.id, [1, 2, 3].map((step) => ({ step, name: 'loss', value: step, elapsed_seconds: step })), 3);
  store.endAttempt(job.id, 'interrupted', 'killed', [], 3);
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: 'abc' });
  store.trainingStarted(job.id, 'wasm', 'cpu', 1);
  assert.deepEqual(steps(), [1]);
  assert.equal(store.job(job.id).resumed_from_step, 1);
});

test('store: running jobs of a dead coordinator are recovered as interrupted; live ones are left alone', () => {
  const { store, experimentId, job } = freshStore();
  const [other] = store.syncJobs(experimentId, [{ cell_index: 1, config: {}, config_hash: 'h2', labels: {}, seed: 0 }]);
  store.startAttempt(job.id, { host: 'here', pid: 999_999, pid_started: 5, git_commit: null });
  store.startAttempt(other.id, { host: 'here', pid: process.pid, pid_started: 7, git_commit: null });
  const asked: [number, number | null][] = [];
  const n = store.recoverStale(experimentId, 'here', (pid, started) => {
    asked.push([pid, started]);
    return pid === process.pid;
  });
  assert.equal(n, 1);
  assert.deepEqual(asked, [[999_999, 5], [process.pid, 7]], 'the recorded start time is handed to the liveness test');
  assert.equal(store.job(job.id).status, 'interrupted');
  assert.match(store.job(job.id).error!, /its coordinator \(pid 999999 on here\) died/);
  assert.equal(store.job(other.id).status, 'running');
});

test('store: a lease is taken over once it has expired, also from a live owner on another host; renewals keep it', () => {
  const { store, experimentId, job } = freshStore();
  const owner = { host: 'elsewhere', pid: 42, pid_started: 1 };
  store.startAttempt(job.id, { ...owner, git_commit: null });
  const until = Date.parse(store.job(job.id).lease_until!);
  assert.ok(Math.abs(until - Date.now() - LEASE_SECONDS * 1000) < 5000, `lease until ${store.job(job.id).lease_until}`);
  // Another host cannot test the owner's pid: only the lease decides.
  const alive = () => assert.fail('a pid of another host is never tested');
  assert.equal(store.recoverStale(experimentId, 'here', alive, until - 1000), 0);
  assert.equal(store.job(job.id).status, 'running');
  // A renewal moves the deadline; an expired lease is taken over.
  assert.deepEqual(store.renewLeases(owner, [job.id]), []);
  const renewed = Date.parse(store.job(job.id).lease_until!);
  assert.ok(renewed >= until);
  assert.equal(store.recoverStale(experimentId, 'here', alive, renewed + 1), 1);
  assert.match(store.job(job.id).error!, /its coordinator \(pid 42 on elsewhere\) stopped renewing its lease/);
  // The old owner, back (a paused machine), has lost the job: its renewal says so and its result is refused.
  assert.deepEqual(store.renewLeases(owner, [job.id]), [job.id]);
  store.startAttempt(job.id, { host: 'here', pid: 7, pid_started: 9, git_commit: null });
  assert.deepEqual(store.renewLeases(owner, [job.id]), [job.id]);
  assert.throws(() => store.finishJob(job.id, { zero_shot_top1: 0.5 }, [], 3, undefined, {}, owner), JobOwnershipLost);
  assert.throws(() => store.endAttempt(job.id, 'failed', 'x', [], 3, owner), JobOwnershipLost);
  // A pid reused by another process (same pid, other start time) is not the owner either.
  assert.throws(() => store.finishJob(job.id, { zero_shot_top1: 0.5 }, [], 3, undefined, {}, { host: 'here', pid: 7, pid_started: 10 }), JobOwnershipLost);
  assert.equal(store.job(job.id).status, 'running');
  assert.deepEqual(store.results(job.id), {}, 'nothing of the refused writes is kept');
  store.finishJob(job.id, { zero_shot_top1: 0.5 }, [], 3, undefined, {}, { host: 'here', pid: 7, pid_started: 9 });
  assert.equal(store.job(job.id).status, 'done');
});

test('store: a database from a newer schema version is refused and left unchanged', () => {
  const path = join(tempDir(), 'newer.db');
  const db = new Database(path);
  db.pragma('application_id = 1179404624');
  db.pragma(`user_version = ${SCHEMA_VERSION + 3}`);
  db.close();
  const before = readFileSync(path);
  assert.throws(() => ResultStore.open(path), (err: Error) => err instanceof StoreError && new RegExp(`schema version ${SCHEMA_VERSION + 3}, newer than this release understands \\(${SCHEMA_VERSION}\\)`).test(err.message));
  assert.deepEqual(readFileSync(path), before);
});

test('store: a foreign SQLite file and a non-database file are refused and left unchanged', () => {
  const dir = tempDir();
  const foreign = join(dir, 'foreign.db');
  const db = new Database(foreign);
  db.exec('CREATE TABLE customers (id INTEGER)');
  db.close();
  const before = readFileSync(foreign);
  assert.throws(() => ResultStore.open(foreign), /SQLite database of something else \(tables: customers\)/);
  assert.deepEqual(readFileSync(foreign), before);
  const text = join(dir, 'notes.db');
  writeFileSync(text, 'this is not a database, just some text that is long enough to have a header'.repeat(20));
  assert.throws(() => ResultStore.open(text), /is not a usable SQLite database/);
  assert.match(readFileSync(text, 'utf8'), /^this is not a database/);
});

test('store: an unwritable location gives a clear error naming the path', () => {
  const dir = tempDir();
  const blocker = join(dir, 'file');
  writeFileSync(blocker, 'x');
  // A path below a regular file can never be created, even as root.
  assert.throws(() => ResultStore.open(join(blocker, 'results.db')), /cannot open the results database .*file\/results\.db: .*Choose a writable location with --db PATH/);
  assert.throws(() => ResultStore.open(join(dir, 'missing', 'x.db'), { readonly: true }), /cannot open the results database .*x\.db: .*Run a sweep first, or pass --db PATH/);
});

test('store: a version-1 database is migrated in place and keeps its rows', () => {
  const path = join(tempDir(), 'v1.db');
  const db = new Database(path);
  db.exec(MIGRATIONS[0]);
  db.pragma('application_id = 1179404624');
  db.pragma('user_version = 1');
  db.prepare("INSERT INTO experiments (name, created_at, updated_at) VALUES ('old', 't', 't')").run();
  db.prepare("INSERT INTO jobs (experiment_id, cell_index, config, config_hash, labels, seed, status) VALUES (1, 0, '{}', 'h', '{}', 0, 'done')").run();
  db.close();
  const store = ResultStore.open(path);
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  const job = store.job(1);
  assert.equal(job.status, 'done');
  assert.equal(job.source_job_id, null);
  store.close();
});

test('store: a version-2 database gains an empty job_logs table and keeps its jobs', () => {
  const path = join(tempDir(), 'v2.db');
  const db = new Database(path);
  db.exec(MIGRATIONS[0]);
  db.exec(MIGRATIONS[1]);
  db.pragma('application_id = 1179404624');
  db.pragma('user_version = 2');
  db.prepare("INSERT INTO experiments (name, created_at, updated_at) VALUES ('old', 't', 't')").run();
  db.prepare("INSERT INTO jobs (experiment_id, cell_index, config, config_hash, labels, seed, status, attempts) VALUES (1, 0, '{}', 'h', '{}', 0, 'done', 1)").run();
  db.close();
  // A reader cannot migrate: it says what to do.
  assert.throws(() => ResultStore.open(path, { readonly: true }), /schema version 2; run a sweep once to migrate it/);
  const store = ResultStore.open(path);
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(store.job(1).status, 'done');
  assert.deepEqual(store.logs(1), { lines: [], received: 0 });
  store.appendLogs(1, [{ at: 't', message: 'after the migration' }]);
  assert.deepEqual(store.logs(1).lines.map((l) => l.message), ['after the migration']);
  store.close();
});

test('store: log lines are numbered per job, the last N can be read, and a new attempt clears them', () => {
  const { store, experimentId, job } = freshStore();
  const [other] = store.syncJobs(experimentId, [{ cell_index: 1, config: {}, config_hash: 'h2', labels: {}, seed: 0 }]);
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: null });
  store.startAttempt(other.id, { host: 'h', pid: 1, git_commit: null });
  store.appendLogs(job.id, [{ at: '2026-01-01T00:00:00.000Z', message: 'backend: wasm' }, { at: '2026-01-01T00:00:01.000Z', message: 'model: 10 parameters' }]);
  store.appendLogs(other.id, [{ at: 't', message: 'other job' }]);
  store.appendLogs(job.id, [{ at: '2026-01-01T00:00:02.000Z', message: 'done' }]);
  const all = store.logs(job.id);
  assert.equal(all.received, 3);
  assert.deepEqual(all.lines.map((l) => [l.seq, l.at, l.message]), [
    [1, '2026-01-01T00:00:00.000Z', 'backend: wasm'],
    [2, '2026-01-01T00:00:01.000Z', 'model: 10 parameters'],
    [3, '2026-01-01T00:00:02.000Z', 'done'],
  ]);
  assert.deepEqual(store.logs(job.id, 2).lines.map((l) => l.message), ['model: 10 parameters', 'done']);
  assert.deepEqual(store.logs(other.id).lines.map((l) => [l.seq, l.message]), [[1, 'other job']]);
  store.endAttempt(job.id, 'failed', 'boom', [], null);
  assert.equal(store.logs(job.id).received, 3, 'a failed attempt keeps its log');
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: null });
  assert.deepEqual(store.logs(job.id), { lines: [], received: 0 });
  assert.equal(store.logs(other.id).received, 1);
});

test('store: a chatty job keeps only its first and last log lines, and long lines are cut', () => {
  const { store, job } = freshStore();
  store.startAttempt(job.id, { host: 'h', pid: 1, git_commit: null });
  const total = LOG_HEAD_LINES + LOG_TAIL_LINES + 500;
  // In batches of 7, as a coordinator's flushes would bring them; one long line among the tail.
  for (let first = 1; first <= total; first += 7) {
    const batch = [];
    for (let seq = first; seq < first + 7 && seq <= total; seq++) batch.push({ at: 't', message: seq === total - 1 ? 'x'.repeat(LOG_LINE_CHARS + 25) : `line ${seq}` });
    store.appendLogs(job.id, batch);
  }
  const { lines, received } = store.logs(job.id);
  assert.equal(received, total);
  assert.equal(lines.length, LOG_HEAD_LINES + LOG_TAIL_LINES);
  const seqs = lines.map((l) => l.seq);
  const expected = [...Array.from({ length: LOG_HEAD_LINES }, (_, i) => i + 1), ...Array.from({ length: LOG_TAIL_LINES }, (_, i) => total - LOG_TAIL_LINES + 1 + i)];
  assert.deepEqual(seqs, expected);
  assert.ok(lines.every((l) => l.seq === total - 1 || l.message === `line ${l.seq}`), 'each kept line is the one sent with that number');
  const long = lines.find((l) => l.seq === total - 1)!;
  assert.equal(long.message, `${'x'.repeat(LOG_LINE_CHARS)}... (25 more characters cut)`);
  // One batch bigger than the whole cap at once.
  store.appendLogs(job.id, Array.from({ length: 1000 }, (_, i) => ({ at: 't', message: `burst ${i}` })));
  const after = store.logs(job.id);
  assert.equal(after.received, total + 1000);
  assert.equal(after.lines.length, LOG_HEAD_LINES + LOG_TAIL_LINES);
  assert.equal(after.lines[LOG_HEAD_LINES].message, `burst ${1000 - LOG_TAIL_LINES}`);
  assert.equal(after.lines.at(-1)!.message, 'burst 999');
});

test('store: a new database another process is writing is still opened, in WAL mode, once the writer lets go', async () => {
  // SQLite answers the switch to WAL mode with SQLITE_BUSY at once, without running the busy handler, while another
  // connection holds a write lock on a file not yet in WAL mode: the race CI met when six coordinators created one
  // database together.
  const path = join(tempDir(), 'results.db');
  const holder = `const D = require('better-sqlite3'); const db = new D(process.env.RACE_DB); db.exec('BEGIN IMMEDIATE'); console.log('held'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, 700);`;
  const child = spawn(process.execPath, ['-e', holder], { cwd: ROOT, env: { ...process.env, RACE_DB: path } });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`the reader exited (${code}) before holding its lock`)));
  });
  const store = ResultStore.open(path);
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  store.close();
});

test('store: several coordinators creating one new database at the same moment all open it', async () => {
  const path = join(tempDir(), 'race', 'results.db');
  // Real separate processes, started together, each opening (and so creating or migrating) the same new file.
  const script = `import { ResultStore } from ${JSON.stringify(join(ROOT, 'framework/store/result-store.ts'))}; ResultStore.open(process.env.RACE_DB).close(); console.log('ok');`;
  const runs = await Promise.all(
    Array.from({ length: 6 }, () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, RACE_DB: path } });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (out += b.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      }),
    ),
  );
  for (const r of runs) assert.equal(r.code, 0, r.out);
  const store = ResultStore.open(path, { readonly: true });
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  store.close();
});
