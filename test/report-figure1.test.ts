/**
 * Figure 1's data: zero-shot top-1 against training time per cell, the seeds averaged on a common time axis (their
 * evaluation times inside the span all of them cover, each seed interpolated linearly), one panel per table block.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveLayout } from '../framework/report/axes.js';
import { FixtureDb, type FixtureJob } from '../framework/report/fixture.js';
import { figure1Panels, type Figure1Panel } from '../framework/report/figure1.js';
import { reportExperiment } from '../framework/report/generate.js';
import { loadExperiment, openResultsDb } from '../framework/report/load.js';

let dir: string;
let dbPath: string;
let panels: Figure1Panel[];

function job(ratio: string, budget: string, seed: number, points: [number, number, number | null][]): FixtureJob {
  return {
    labels: { 'mask.image_ratio': ratio, 'train.batch_size': ratio === '0' ? '64' : '128', budget, seed: String(seed) },
    seed,
    config: { train: { epochs: budget === 'epochs' ? 2 : null, time_budget_s: budget === 'time' ? 30 : null } },
    status: 'done',
    results: { zero_shot_top1: points[points.length - 1]![1] },
    metrics: { zero_shot_top1: points },
  };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-figure1-'));
  dbPath = join(dir, 'results.db');
  const f = new FixtureDb(dbPath);
  const id = f.addExperiment({
    name: 'fig', description: '', file: null,
    axes: [
      { name: 'mask.image_ratio', labels: ['0', '0.5'] }, { name: 'train.batch_size', labels: ['64', '128'] },
      { name: 'budget', labels: ['epochs', 'time'] }, { name: 'seed', labels: ['0', '1'] },
    ],
    report: { rows: 'mask.image_ratio', columns: null, metrics: ['zero_shot_top1'], baseline: null, paper: null },
    spec: {},
  });
  f.addJobs(id, [
    // Two seeds of mask 0 whose evaluations fall at different seconds: the common span is 12 s .. 28 s.
    job('0', 'epochs', 0, [[10, 0.1, 10], [20, 0.2, 20], [30, 0.3, 30]]),
    job('0', 'epochs', 1, [[10, 0.2, 12], [20, 0.3, 22], [30, 0.4, 28]]),
    // One seed: its own points, no spread. A point without elapsed time is left out.
    job('0.5', 'epochs', 0, [[10, 0.25, 5], [20, 0.35, null], [30, 0.45, 15]]),
    job('0', 'time', 0, [[10, 0.1, 10], [20, 0.2, 20], [30, 0.25, 30]]),
    { ...job('0.5', 'time', 0, [[10, 0.9, 1]]), status: 'failed' },
  ]);
  f.close();
  const db = openResultsDb(dbPath);
  try {
    const data = loadExperiment(db, 'fig');
    panels = figure1Panels(data, resolveLayout(data));
  } finally {
    db.close();
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

function close(actual: readonly (number | null)[], expected: readonly (number | null)[]): void {
  assert.equal(actual.length, expected.length, `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    if (e === null) assert.equal(a, null);
    else assert.ok(a !== null && Math.abs(a - e) < 1e-9, `${i}: ${a} vs ${e}`);
  });
}

test('one panel per block, one curve per cell in row order, failed jobs left out', () => {
  assert.deepEqual(panels.map((p) => p.title), ['budget = epochs', 'budget = time']);
  assert.deepEqual(panels[0]!.curves.map((c) => c.name), ['mask.image_ratio = 0, train.batch_size = 64', 'mask.image_ratio = 0.5, train.batch_size = 128']);
  assert.deepEqual(panels[1]!.curves.map((c) => c.name), ['mask.image_ratio = 0, train.batch_size = 64']);
});

test('seeds are averaged on a common time axis, not step by step', () => {
  const c = panels[0]!.curves[0]!;
  assert.equal(c.n, 2);
  close(c.time, [12, 20, 22, 28]);
  // seed 0 at 12/20/22/28 s: 12, 20, 22, 28 %; seed 1: 20, 28, 30, 40 % (linear between its own points).
  close(c.mean, [16, 24, 26, 34]);
  close(c.std, [8 / Math.SQRT2, 8 / Math.SQRT2, 8 / Math.SQRT2, 12 / Math.SQRT2]);
});

test('a single seed keeps its own timed points and has no spread', () => {
  const c = panels[0]!.curves[1]!;
  assert.equal(c.n, 1);
  close(c.time, [5, 15]);
  close(c.mean, [25, 45]);
  close(c.std, [null, null]);
});

test('the report writes one plot per block and figure1.csv with every point', async () => {
  const db = openResultsDb(dbPath);
  try {
    const r = await reportExperiment(db, 'fig', { dbPath, outDir: join(dir, 'reports') });
    assert.ok(r.files.includes('accuracy-vs-time-epochs.png') && r.files.includes('accuracy-vs-time-time.png'), r.files.join(', '));
    assert.ok(existsSync(join(r.dir, 'accuracy-vs-time-epochs.png')));
    const csv = readFileSync(join(r.dir, 'figure1.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'budget,curve,seeds,time_s,zero_shot_top1_mean_pct,zero_shot_top1_std_pct');
    assert.equal(csv.length, 1 + 4 + 2 + 3);
    assert.ok(csv.includes('epochs,"mask.image_ratio = 0, train.batch_size = 64",2,20,24,5.656854249492381'), csv.join('\n'));
    assert.ok(csv.includes('epochs,"mask.image_ratio = 0.5, train.batch_size = 128",1,15,45,'), csv.join('\n'));
    const page = readFileSync(join(r.dir, 'index.html'), 'utf8');
    assert.ok(page.includes('<img src="accuracy-vs-time-time.png"'));
  } finally {
    db.close();
  }
});
