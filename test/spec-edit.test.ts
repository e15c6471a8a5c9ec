/**
 * A spec edited after it was swept: its earlier jobs stay in the database as they were recorded, but the report and
 * status show the jobs of the spec as last swept only, so two versions of one cell never mix in a table. Sweeping the
 * earlier version again brings its jobs back, already done.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli, writeFiles } from './helpers.js';

const spec = (steps: number) => `name: edited
base:
  data: { dataset: shapes, train_size: 64, eval_size: 16, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 8, steps: ${steps} }
axes:
  mask.image_ratio: [0, 0.5]
`;

function jobs(db: string): { steps: number; in_grid: number; status: string }[] {
  const d = new Database(db, { readonly: true });
  try {
    return d
      .prepare("SELECT r.value AS steps, j.in_grid, j.status FROM jobs j JOIN results r ON r.job_id = j.id AND r.name = 'steps' ORDER BY j.id")
      .all() as { steps: number; in_grid: number; status: string }[];
  } finally {
    d.close();
  }
}

test('an edited spec: the earlier jobs are kept but left out of the report and status; sweeping the earlier spec brings them back', () => {
  const dir = writeFiles({ 's.yaml': spec(3) });
  const file = join(dir, 's.yaml');
  const db = join(dir, 'r.db');
  const out = join(dir, 'reports');
  const sweep = () => {
    const r = runCli('sweep', [file, '--db', db, '--plain']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return r.stdout;
  };
  sweep();
  // The same labels, another config: every job's hash changes.
  writeFileSync(file, spec(5));
  assert.match(sweep(), /2 done, 0 failed, 0 interrupted, 0 already done before/);
  assert.deepEqual(jobs(db), [
    { steps: 3, in_grid: 0, status: 'done' },
    { steps: 3, in_grid: 0, status: 'done' },
    { steps: 5, in_grid: 1, status: 'done' },
    { steps: 5, in_grid: 1, status: 'done' },
  ]);

  const report = runCli('report', ['--experiment', 'edited', '--db', db, '--out', out]);
  assert.equal(report.status, 0, report.stderr);
  const table = readFileSync(join(out, 'edited', 'table.md'), 'utf8');
  const rows = table.split('\n').filter((l) => /^\| 0(\.5)? \|/.test(l));
  assert.equal(rows.length, 2, table);
  // One seed per cell: had the earlier jobs been counted, n would be 2.
  for (const row of rows) assert.match(row, /^\| 0(\.5)? \| 1 \| /, row);
  const csv = readFileSync(join(out, 'edited', 'jobs.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 1 + 2, csv.join('\n'));

  const status = runCli('status', ['--experiment', 'edited', '--db', db, '--logs', '0']);
  assert.equal(status.status, 0, status.stderr);
  assert.equal((status.stdout.match(/\bdone\b/g) ?? []).length, 2, status.stdout);
  assert.match(status.stdout, /\(2 jobs of earlier versions of the spec kept in the database, not listed/);
  const all = runCli('status', ['--db', db]);
  assert.match(all.stdout, /edited\s+2\s/, all.stdout);

  writeFileSync(file, spec(3));
  assert.match(sweep(), /0 done, 0 failed, 0 interrupted, 2 already done before/);
  assert.deepEqual(jobs(db).map((j) => j.in_grid), [1, 1, 0, 0]);
});
