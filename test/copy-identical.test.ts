/**
 * One training per config in a database: a job whose identical job (same config hash) another experiment has done is
 * copied, not trained again (the suite's shared cells, the Table 8 baselines); --no-copy trains it anyway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli, writeFiles } from './helpers.js';

const spec = (name: string, ratios: number[]) => `name: ${name}
base:
  data: { dataset: shapes, train_size: 128, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 20 }
  eval: { every: 10 }
axes:
  mask.image_ratio: [${ratios.join(', ')}]
`;

interface Row {
  id: number;
  experiment: string;
  ratio: string;
  status: string;
  attempts: number;
  copied_from_job_id: number | null;
}

test('a job another experiment has done identically is copied (results, curve, artifacts); --no-copy trains it', () => {
  const dir = writeFiles({ 'a.yaml': spec('a', [0, 0.5]), 'b.yaml': spec('b', [0.5, 0.75]), 'c.yaml': spec('c', [0.5]) });
  const db = join(dir, 'r.db');
  const sweep = (file: string, ...more: string[]) => {
    const r = runCli('sweep', [join(dir, file), '--db', db, '--plain', ...more], { timeoutMs: 240_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return r.stdout + r.stderr;
  };
  sweep('a.yaml');
  const b = sweep('b.yaml');
  assert.match(b, /b: 1 done, 0 failed, 0 interrupted, 0 already done before, 1 copied from identical jobs of other experiments/);
  const c = sweep('c.yaml', '--no-copy');
  assert.match(c, /c: 1 done, 0 failed, 0 interrupted, 0 already done before \(/);
  // Run again: the copied job is simply done.
  assert.match(sweep('b.yaml'), /b: 0 done, 0 failed, 0 interrupted, 2 already done before \(/);

  const d = new Database(db, { readonly: true });
  try {
    const rows = d
      .prepare(
        `SELECT j.id, e.name AS experiment, json_extract(j.labels, '$."mask.image_ratio"') AS ratio, j.status, j.attempts, j.copied_from_job_id
         FROM jobs j JOIN experiments e ON e.id = j.experiment_id ORDER BY j.id`,
      )
      .all() as Row[];
    const find = (experiment: string, ratio: string) => rows.find((r) => r.experiment === experiment && r.ratio === ratio)!;
    const source = find('a', '0.5');
    const copied = find('b', '0.5');
    assert.equal(copied.status, 'done');
    assert.equal(copied.attempts, 0, 'never trained here');
    assert.equal(copied.copied_from_job_id, source.id);
    assert.equal(find('b', '0.75').copied_from_job_id, null, 'a config no other experiment has is trained');
    assert.equal(find('b', '0.75').attempts, 1);
    const trained = find('c', '0.5');
    assert.equal(trained.copied_from_job_id, null);
    assert.equal(trained.attempts, 1, '--no-copy trains it');

    const dump = (id: number, sql: string) => d.prepare(sql).all(id);
    for (const sql of [
      'SELECT name, value FROM results WHERE job_id = ? ORDER BY name',
      'SELECT step, name, value, elapsed_seconds FROM metrics WHERE job_id = ? ORDER BY name, step',
      'SELECT name, path FROM artifacts WHERE job_id = ? ORDER BY name',
    ]) {
      const want = dump(source.id, sql);
      assert.ok(want.length > 0, sql);
      assert.deepEqual(dump(copied.id, sql), want, sql);
    }
    // The job trained again under --no-copy gets the same numbers: copying stands for training.
    assert.deepEqual(
      dump(trained.id, "SELECT name, value FROM results WHERE job_id = ? AND name IN ('final_loss', 'zero_shot_top1', 'steps') ORDER BY name"),
      dump(source.id, "SELECT name, value FROM results WHERE job_id = ? AND name IN ('final_loss', 'zero_shot_top1', 'steps') ORDER BY name"),
    );
  } finally {
    d.close();
  }
});
