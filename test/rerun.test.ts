/**
 * `sweep --rerun`: jobs picked by their labels run again from scratch even though they are done (a measurement
 * disturbed by other load, say), with the evaluation-only jobs of their weights; the other jobs keep their records; a
 * pattern that names no axis or label of the grid changes nothing and says what the grid has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli, writeFiles } from './helpers.js';

const SPEC = `name: rerun
base:
  data: { dataset: shapes, train_size: 128, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 6 }
  eval: { every: 3 }
axes:
  mask.image_ratio: [0, 0.5]
  eval.inference: [unmasked, masked]
`;

interface Row {
  id: number;
  labels: string;
  status: string;
  attempts: number;
  started_at: string;
  source_job_id: number | null;
  points: number;
  top1: number | null;
}

function rows(db: string): Map<string, Row> {
  const d = new Database(db, { readonly: true });
  const all = d
    .prepare(
      `SELECT j.id, j.labels, j.status, j.attempts, j.started_at, j.source_job_id,
         (SELECT count(*) FROM metrics m WHERE m.job_id = j.id) AS points,
         (SELECT value FROM results r WHERE r.job_id = j.id AND r.name = 'zero_shot_top1') AS top1
       FROM jobs j ORDER BY j.id`,
    )
    .all() as Row[];
  d.close();
  return new Map(all.map((r) => [r.labels, r]));
}

const key = (ratio: string, inference: string) => JSON.stringify({ 'mask.image_ratio': ratio, 'eval.inference': inference });

test('sweep --rerun runs the matching jobs again, with the evaluation-only jobs of their weights, and nothing else', () => {
  const dir = writeFiles({ 'rerun.yaml': SPEC });
  const db = join(dir, 'r.db');
  const first = runCli('sweep', [join(dir, 'rerun.yaml'), '--db', db, '--concurrency', '1']);
  assert.equal(first.status, 0, first.stderr);
  const before = rows(db);
  assert.equal(before.size, 4);
  // The masked-inference cells evaluate the weights their unmasked twins trained.
  const trainer = before.get(key('0.5', 'unmasked'))!;
  assert.equal(before.get(key('0.5', 'masked'))!.source_job_id, trainer.id);

  const again = runCli('sweep', [join(dir, 'rerun.yaml'), '--db', db, '--concurrency', '1', '--rerun', 'mask.image_ratio=0.5,eval.inference=unmasked']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout + again.stderr, /--rerun: 2 jobs made pending again, their results, curves and logs removed \(1 of them evaluation-only/);
  assert.match(again.stdout, /2 done, 0 failed, 0 interrupted, 2 already done before/);
  const after = rows(db);
  for (const k of [key('0.5', 'unmasked'), key('0.5', 'masked')]) {
    const [b, a] = [before.get(k)!, after.get(k)!];
    assert.equal(a.status, 'done');
    assert.equal(a.attempts, b.attempts + 1, `${k} ran again`);
    assert.ok(a.started_at > b.started_at);
    // Same config and seed, so the same numbers, and one curve (the first run's points were removed, not kept beside).
    assert.equal(a.top1, b.top1);
    assert.equal(a.points, b.points);
  }
  for (const k of [key('0', 'unmasked'), key('0', 'masked')]) assert.deepEqual(after.get(k), before.get(k), `${k} is left as it was`);
});

test('sweep --rerun makes copies of the rerun jobs in other experiments pending; their next sweep copies the new record', () => {
  const dir = writeFiles({ 'rerun.yaml': SPEC, 'other.yaml': SPEC.replace('name: rerun', 'name: other').replace('[unmasked, masked]', '[unmasked]') });
  const db = join(dir, 'r.db');
  const sweep = (file: string, extra: string[] = []) => {
    const run = runCli('sweep', [join(dir, file), '--db', db, '--concurrency', '1', ...extra]);
    assert.equal(run.status, 0, run.stderr);
    return run.stdout + run.stderr;
  };
  sweep('rerun.yaml');
  assert.match(sweep('other.yaml'), /2 copied from identical jobs/);
  const d = () => new Database(db, { readonly: true });
  const copyOf = (ratio: string) => {
    const db_ = d();
    const row = db_.prepare(
      `SELECT c.status, c.copied_from_job_id AS source, c.started_at FROM jobs c JOIN experiments e ON e.id = c.experiment_id
       WHERE e.name = 'other' AND json_extract(c.labels, '$."mask.image_ratio"') = ?`,
    ).get(ratio) as { status: string; source: number | null; started_at: string | null };
    db_.close();
    return row;
  };
  const before = copyOf('0.5');
  assert.equal(before.status, 'done');
  const out = sweep('rerun.yaml', ['--rerun', 'mask.image_ratio=0.5,eval.inference=unmasked']);
  assert.match(out, /1 jobs of other experiments that had copied their records are pending again/);
  assert.equal(copyOf('0.5').status, 'pending');
  assert.equal(copyOf('0').status, 'done');
  assert.match(sweep('other.yaml'), /1 copied from identical jobs/);
  const after = copyOf('0.5');
  assert.equal(after.status, 'done');
  assert.equal(after.source, before.source);
  assert.ok(after.started_at! > before.started_at!, 'the copy is of the rerun, not of the first run');
});

test('sweep --rerun with an axis or label the grid lacks changes nothing and lists what it has', () => {
  const dir = writeFiles({ 'rerun.yaml': SPEC });
  const db = join(dir, 'r.db');
  assert.equal(runCli('sweep', [join(dir, 'rerun.yaml'), '--db', db]).status, 0);
  const d = new Database(db);
  d.pragma('wal_checkpoint(TRUNCATE)');
  d.close();
  const digest = () => createHash('sha256').update(readFileSync(db)).digest('hex');
  const recorded = digest();
  const cases: [string, RegExp][] = [
    ['mask.image_ratio=0.3', /axis "mask\.image_ratio" has no label "0\.3"; its labels: 0, 0\.5; nothing was run or recorded/],
    ['mask_ratio=0.5', /the grid has no axis "mask_ratio"; its axes: mask\.image_ratio, eval\.inference/],
    ['seed', /expected AXIS=LABEL\[,AXIS=LABEL\.\.\.\]/],
  ];
  for (const [pattern, message] of cases) {
    const run = runCli('sweep', [join(dir, 'rerun.yaml'), '--db', db, '--rerun', pattern]);
    assert.equal(run.status, 2, pattern);
    assert.match(run.stderr, message);
  }
  assert.equal(digest(), recorded);
});
