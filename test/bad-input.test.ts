/**
 * Bad input at every entry point: each exits non-zero with a clear message and leaves recorded data unchanged.
 * (The spec-language cases are in spec-validation.test.ts, the store's own cases in store.test.ts.)
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { createCanvas } from '@napi-rs/canvas';
import { ROOT, runCli, tempDir, writeFiles } from './helpers.js';

const TINY = `
base:
  data: { dataset: shapes, train_size: 128, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 4 }
`;

/** A database with one finished experiment: what every failing command must leave exactly as it was. */
let recorded: string;
const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

before(() => {
  const dir = writeFiles({ 'done.yaml': `name: done${TINY}` });
  recorded = join(dir, 'r.db');
  const run = runCli('sweep', [join(dir, 'done.yaml'), '--db', recorded]);
  assert.equal(run.status, 0, run.stderr);
  // Fold the WAL into the main file so that the file digest captures everything.
  const d = new Database(recorded);
  d.pragma('wal_checkpoint(TRUNCATE)');
  d.close();
});

/** A fresh copy of the recorded database for a case that might touch it. */
function recordedCopy(): string {
  const path = join(tempDir(), 'r.db');
  copyFileSync(recorded, path);
  return path;
}

const spec = (text: string) => join(writeFiles({ 's.yaml': text }), 's.yaml');

const cliCases: { name: string; cmd: 'sweep' | 'query' | 'status'; args: (db: string) => string[]; code: number; message: RegExp }[] = [
  { name: 'sweep without a spec', cmd: 'sweep', args: () => [], code: 2, message: /expected one spec file, found 0/ },
  { name: 'sweep with two specs', cmd: 'sweep', args: () => ['a.yaml', 'b.yaml'], code: 2, message: /expected one spec file, found 2/ },
  { name: 'sweep with an unknown flag', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--concurency', '2'], code: 2, message: /Unknown option '--concurency'/ },
  { name: '--concurrency 0', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--concurrency', '0'], code: 2, message: /--concurrency: found "0"; allowed: an integer >= 1/ },
  { name: '--retries not a number', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--retries', 'many'], code: 2, message: /--retries: found "many"; allowed: an integer >= 0/ },
  { name: '--job-timeout 0', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--job-timeout', '0'], code: 2, message: /--job-timeout: found "0"; allowed: an integer >= 1/ },
  { name: 'unknown executor', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--executor', 'kubernetes'], code: 2, message: /--executor: found "kubernetes"; allowed: local, bullmq, slurm/ },
  { name: '--set without a value', cmd: 'sweep', args: (db) => [spec(`name: x${TINY}`), '--db', db, '--set', 'train.steps'], code: 2, message: /--set train\.steps: expected --set path=value/ },
  { name: 'spec is a folder', cmd: 'sweep', args: (db) => [tempDir(), '--db', db], code: 2, message: /cannot read the spec file: EISDIR/ },
  { name: 'spec file is empty', cmd: 'sweep', args: (db) => [spec(''), '--db', db], code: 2, message: /s\.yaml:1:1: found null; a spec must be a mapping/ },
  { name: 'spec is a YAML list', cmd: 'sweep', args: (db) => [spec('- name: x\n'), '--db', db], code: 2, message: /found \[\{"name":"x"\}\]; a spec must be a mapping/ },
  { name: 'spec with a duplicate key', cmd: 'sweep', args: (db) => [spec('name: x\nname: y\n'), '--db', db], code: 2, message: /s\.yaml:2:1: YAML syntax error: Map keys must be unique/ },
  { name: 'emoji asked for more images than exist', cmd: 'sweep', args: (db) => [spec('name: x\nbase:\n  data: { dataset: emoji, train_size: 9000 }\n'), '--db', db], code: 2, message: /s\.yaml:3:39: base: data\.train_size: emoji has 3786 images/ },
  { name: 'fashion-mnist at a wrong path', cmd: 'sweep', args: (db) => [spec('name: x\nbase:\n  data: { dataset: fashion-mnist, path: /nonexistent/fmnist }\n'), '--db', db], code: 2, message: /s\.yaml:3:20: base: data\.dataset: Fashion-MNIST not found at \/nonexistent\/fmnist.*apt-get install dataset-fashion-mnist/s },
  { name: 'folder dataset path missing', cmd: 'sweep', args: (db) => [spec('name: x\nbase:\n  data: { dataset: folder, path: /nonexistent/images }\n'), '--db', db], code: 2, message: /s\.yaml:3:34: base: data\.path: no such file or folder: \/nonexistent\/images/ },
  { name: 'query without SQL', cmd: 'query', args: (db) => ['--db', db], code: 2, message: /expected one SQL statement/ },
  { name: 'query with SQL that does not compile', cmd: 'query', args: (db) => ['SELEC * FROM jobs', '--db', db], code: 2, message: /the SQL does not compile: near "SELEC": syntax error/ },
  { name: 'query that would write', cmd: 'query', args: (db) => ['DROP TABLE jobs', '--db', db], code: 2, message: /refused, "npm run query" is read-only/ },
  { name: 'query with an unknown format', cmd: 'query', args: (db) => ['SELECT 1', '--db', db, '--format', 'xml'], code: 2, message: /--format "xml" is not known; allowed: table, csv, json/ },
  { name: 'query on a missing database', cmd: 'query', args: () => ['SELECT 1', '--db', '/nonexistent/r.db'], code: 1, message: /cannot open the results database \/nonexistent\/r\.db/ },
  { name: 'status of an unknown experiment', cmd: 'status', args: (db) => ['--experiment', 'nope', '--db', db], code: 2, message: /no experiment named "nope" .*known: done/ },
  { name: 'status with an unknown flag', cmd: 'status', args: (db) => ['--experimnt', 'done', '--db', db], code: 2, message: /Unknown option '--experimnt'/ },
];

for (const c of cliCases) {
  test(`bad input: ${c.name}`, () => {
    const db = recordedCopy();
    const before = digest(db);
    const run = runCli(c.cmd, c.args(db));
    assert.equal(run.status, c.code, `exit code; stderr: ${run.stderr}`);
    assert.match(run.stderr, c.message);
    assert.equal(digest(db), before, 'the recorded database is unchanged');
  });
}

test('bad input: a folder dataset with a corrupt image, and a JSONL with a malformed line', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'imgs'));
  const canvas = createCanvas(8, 8);
  for (let i = 0; i < 6; i++) writeFileSync(join(dir, 'imgs', `red_square_${i}.png`), canvas.toBuffer('image/png'));
  writeFileSync(join(dir, 'imgs', 'broken.png'), 'not a png at all');
  writeFileSync(join(dir, 'data.jsonl'), '{"image": "imgs/red_square_0.png", "caption": "a red square"}\n{"image": oops}\n');
  const corrupt = runCli('sweep', [spec(`name: x\nbase:\n  data: { dataset: folder, path: ${join(dir, 'imgs')}, train_size: 4, eval_size: 2 }\n  train: { batch_size: 2, steps: 2 }\n`), '--dry-run']);
  assert.equal(corrupt.status, 2, corrupt.stderr);
  assert.match(corrupt.stderr, /data\.path: cannot decode image .*broken\.png/);
  const jsonl = runCli('sweep', [spec(`name: x\nbase:\n  data: { dataset: folder, path: ${join(dir, 'data.jsonl')}, train_size: 2, eval_size: 1 }\n  train: { batch_size: 2 }\n`), '--dry-run']);
  assert.equal(jsonl.status, 2, jsonl.stderr);
  assert.match(jsonl.stderr, /data\.jsonl:2: invalid JSON/);
});

test('bad input: databases that are foreign, not SQLite, from a newer schema, or in an unwritable place', () => {
  const dir = tempDir();
  const foreign = join(dir, 'foreign.db');
  const f = new Database(foreign);
  f.exec('CREATE TABLE invoices (id INTEGER)');
  f.close();
  const text = join(dir, 'text.db');
  writeFileSync(text, 'hello, this is a text file and not a database '.repeat(30));
  const newer = recordedCopy();
  const n = new Database(newer);
  n.pragma('user_version = 99');
  n.close();
  const cases: [string, RegExp][] = [
    [foreign, /SQLite database of something else \(tables: invoices\)/],
    [text, /is not a usable SQLite database/],
    [newer, /schema version 99, newer than this release understands/],
    [join(text, 'below-a-file.db'), /cannot open the results database .*below-a-file\.db/],
  ];
  for (const [db, message] of cases) {
    const existing = (() => {
      try {
        return digest(db);
      } catch {
        return null;
      }
    })();
    for (const cmd of ['sweep', 'query'] as const) {
      const run = cmd === 'sweep' ? runCli('sweep', [spec(`name: x${TINY}`), '--db', db]) : runCli('query', ['SELECT 1', '--db', db]);
      assert.equal(run.status, 1, `${cmd} ${db}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    if (existing) assert.equal(digest(db), existing, `${db} unchanged`);
  }
});

test('bad input: a results folder that cannot be written', (t) => {
  const dir = tempDir();
  const folder = join(dir, 'results');
  mkdirSync(folder);
  if (process.getuid?.() === 0) {
    // Root ignores permission bits: mount a read-only filesystem there instead.
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', folder]);
    if (mount.status !== 0) {
      if (process.env.CI) assert.fail(`cannot mount a read-only tmpfs for this test: ${mount.stderr}`);
      t.skip('cannot mount a read-only tmpfs here');
      return;
    }
    t.after(() => spawnSync('umount', [folder]));
  } else {
    chmodSync(folder, 0o555);
  }
  const run = runCli('sweep', [spec(`name: x${TINY}`), '--db', join(folder, 'r.db')]);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /cannot open the results database .*results\/r\.db: .*(read-only|readonly|permission|unable to open).*Choose a writable location with --db PATH/is);
});

test('bad input: the disk fills up during a sweep; what was recorded stays intact', () => {
  const db = recordedCopy();
  const doneBefore = new Database(db, { readonly: true }).prepare("SELECT * FROM jobs WHERE status = 'done'").all();
  const file = spec(`name: big\n${TINY.replace('steps: 4', 'steps: 200')}`);
  // A file size limit a little above the current database: the first writes fit, later ones fail like a full disk.
  const limitBlocks = Math.ceil(readFileSync(db).length / 1024) + 24;
  const run = spawnSync('bash', ['-c', `ulimit -f ${limitBlocks}; exec "${process.execPath}" --import tsx framework/cli/sweep.ts "${file}" --db "${db}" --plain`], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /sweep stopped: the results database .* cannot be written: .*(disk I\/O error|full).*What was recorded before is intact/s);
  const d = new Database(db, { readonly: true });
  assert.equal(d.pragma('integrity_check', { simple: true }), 'ok');
  assert.deepEqual(d.prepare("SELECT * FROM jobs WHERE status = 'done'").all(), doneBefore);
  d.close();
});

test('bad input: bench flags are checked, and --set reaches the benchmarked config', () => {
  const unknown = runCli('bench', ['--stpes', '3']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /Unknown option '--stpes'[\s\S]*usage: npm run bench/);
  const badSet = runCli('bench', ['--set', 'model.image.patchsize=8']);
  assert.equal(badSet.status, 2);
  assert.match(badSet.stderr, /unknown config field "model\.image\.patchsize" \(did you mean "model\.image\.patch_size"\?\)/);
  const badValue = runCli('bench', ['--set', 'model.image.patch_size=0']);
  assert.equal(badValue.status, 2);
  assert.match(badValue.stderr, /model\.image\.patch_size/);
  const help = runCli('bench', ['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--set PATH=VALUE/);
  // One timed step per ratio, no overhead jobs: the FLOPs per step show which config was benchmarked.
  const quick = ['--preset', 'tiny', '--batch', '8', '--steps', '1', '--warmup', '0', '--block', '1', '--no-overhead', '--json', '--set', 'data.image_size=16'];
  const flops = (extra: string[]) => {
    const run = runCli('bench', [...quick, ...extra]);
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { preset: string; batch_size: number; flops_per_step: Record<string, number> };
    assert.equal(out.preset, 'tiny');
    assert.equal(out.batch_size, 8);
    return out.flops_per_step['0']!;
  };
  const patch4 = flops([]);
  const patch8 = flops(['--set', 'model.image.patch_size=8']);
  assert.ok(patch8 < patch4, `4 patches of 8x8 should cost less than 16 of 4x4: ${patch8} vs ${patch4} FLOPs per step`);
});
