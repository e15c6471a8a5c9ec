/**
 * The GPU bundle (scripts/gpu/prepare.sh) runs the real coordinator without the repository: its sweep records a spec's
 * jobs into SQLite through the prebuilt job process, and its status, query and report read that database. Everything
 * runs from a folder outside the repository, so that no package resolves through the project's node_modules.
 * prepare.sh --fast leaves the binaries uncompressed and skips node, Vulkan and the native add-on (a few seconds).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers.js';

const dir = tempDir('flip-bundle-');
const bundle = join(dir, 'bundle');
const work = join(dir, 'work');
mkdirSync(work);
// The --fast bundle holds ~60 MB of uncompressed add-ons.
after(() => rmSync(dir, { recursive: true, force: true }));

/** The environment of a machine that has only the bundle: nothing that points back into the repository. */
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLIP_') && k !== 'NODE_OPTIONS' && k !== 'NODE_PATH'));
  return { ...clean, FLIP_JOB_PROCESS: join(bundle, 'job-process.mjs'), ...extra };
};

function run(cli: string, args: string[], extra: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(bundle, cli), ...args], { cwd: work, encoding: 'utf8', timeout: 120_000, env: env(extra) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('prepare.sh --fast bundles the CLIs, the job process, their native add-ons and the files they read', () => {
  const r = spawnSync('bash', [join(ROOT, 'scripts/gpu/prepare.sh'), bundle, '--fast'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  for (const file of [
    'sweep.mjs', 'report.mjs', 'status.mjs', 'query.mjs', 'job-process.mjs', 'bench.mjs', 'probe.mjs', 'run-on-gpu.sh',
    'experiments/smoke.yaml', 'experiments/ablation-a.yaml', 'experiments/flip-base.yaml', 'reports/paper-results.json',
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'node_modules/bindings/bindings.js',
    'node_modules/@napi-rs/canvas-linux-x64-gnu/skia.linux-x64-gnu.node',
  ]) assert.ok(existsSync(join(bundle, file)), `the bundle has ${file}`);
  assert.ok(!existsSync(join(bundle, 'sweep-lite.mjs')), 'the stand-in sweep is gone');
});

test("the bundle's sweep records a spec into SQLite, and status, query and report read it", () => {
  const db = join(work, 'results.db');
  const sweep = run('sweep.mjs', [join(bundle, 'experiments/smoke.yaml'), '--db', db, '--plain', '--set', 'train.steps=10', '--set', 'eval.every=0', '--concurrency', '2']);
  assert.equal(sweep.status, 0, sweep.stderr.slice(-2000));
  assert.match(sweep.stdout, /smoke: 4 done, 0 failed/);

  const status = run('status.mjs', ['--db', db]);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /^smoke\s+4\s+0\s+0\s+4\s+0/m);

  const query = run('query.mjs', ["SELECT count(*) AS n, min(value) AS lo FROM results WHERE name = 'zero_shot_top1'", '--db', db, '--format', 'json']);
  assert.equal(query.status, 0, query.stderr);
  const [row] = JSON.parse(query.stdout) as { n: number; lo: number }[];
  assert.equal(row.n, 4, 'one zero-shot result per job');
  assert.ok(row.lo >= 0 && row.lo <= 1, `accuracy in [0, 1]: ${row.lo}`);

  const out = join(work, 'reports');
  const report = run('report.mjs', ['--all', '--db', db, '--out', out]);
  assert.equal(report.status, 0, report.stderr);
  assert.match(report.stdout, /smoke: .*index\.html/);
  const png = readFileSync(join(out, 'smoke', 'zero_shot_top1-vs-mask.image_ratio.png'));
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')], 'a chart drawn by the bundled canvas');
  // The claims scorecard reads the paper's numbers: found in the bundle, not in the repository.
  const claims = JSON.parse(readFileSync(join(out, 'claims.json'), 'utf8')) as { claims: unknown[] };
  assert.ok(claims.claims.length > 0);
});

test('a FLIP_JOB_PROCESS naming no file fails the jobs with a message naming it', () => {
  const missing = join(dir, 'no-such-job-process.mjs');
  const sweep = run('sweep.mjs', [join(bundle, 'experiments/smoke.yaml'), '--db', join(work, 'missing.db'), '--plain', '--retries', '0'], { FLIP_JOB_PROCESS: missing });
  assert.notEqual(sweep.status, 0);
  assert.ok(`${sweep.stdout}${sweep.stderr}`.includes(`FLIP_JOB_PROCESS=${missing}: no such file`), sweep.stdout + sweep.stderr);
});
