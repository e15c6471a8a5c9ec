import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveLayout } from '../framework/report/axes.js';
import { cellLine } from '../framework/report/format.js';
import { addAblationA, addAblationB, addScaling, jobsFor } from '../framework/report/demo-fixtures.js';
import { DEFAULT_PAPER_RESULTS } from '../framework/report/generate.js';
import { comparePaper, loadPaperResults } from '../framework/report/paper.js';
import { TableBuilder } from '../framework/report/table.js';
import { FixtureDb } from '../framework/report/fixture.js';
import { loadExperiment, openResultsDb } from '../framework/report/load.js';
import type { Database } from '../framework/report/sqlite.js';
import { summarize } from '../framework/report/stats.js';
import { buildTable, type TableModel } from '../framework/report/table.js';

let dir: string;
let db: Database;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-table-'));
  const f = new FixtureDb(join(dir, 'results.db'));
  addAblationA(f);
  addAblationB(f);
  addScaling(f);
  const zip = f.addExperiment({
    name: 'zip', description: '', file: null,
    axes: [{ name: 'mask.image_ratio', labels: ['0', '0.5', '0.75'] }, { name: 'train.batch_size', labels: ['64', '128', '256'] }, { name: 'seed', labels: ['0', '1'] }],
    report: { rows: 'mask.image_ratio', columns: null, metrics: ['zero_shot_top1', 'train_seconds'], baseline: { 'mask.image_ratio': '0' }, paper: 'table1a' },
    spec: {},
  });
  f.addJobs(zip, jobsFor([
    { labels: { 'mask.image_ratio': '0', 'train.batch_size': '64' }, top1: [0.3, 0.3], seconds: 100, flops: 1, batch: 64 },
    { labels: { 'mask.image_ratio': '0.5', 'train.batch_size': '128' }, top1: [0.32, 0.32], seconds: 50, flops: 1, batch: 128 },
    { labels: { 'mask.image_ratio': '0.75', 'train.batch_size': '256' }, top1: [0.29, 0.29], seconds: 40, flops: 1, batch: 256 },
  ]));
  const zipColumns = f.addExperiment({
    name: 'zip-columns', description: '', file: null,
    axes: [{ name: 'eval.inference', labels: ['unmasked', 'masked'] }, { name: 'mask.image_ratio', labels: ['0.5', '0.75'] }, { name: 'train.batch_size', labels: ['128', '256'] }],
    report: { rows: 'eval.inference', columns: 'mask.image_ratio', metrics: ['zero_shot_top1'], baseline: { 'eval.inference': 'unmasked' }, paper: null },
    spec: {},
  });
  f.addJobs(zipColumns, jobsFor([
    { labels: { 'eval.inference': 'unmasked', 'mask.image_ratio': '0.5', 'train.batch_size': '128' }, top1: [0.3], seconds: 10, flops: 1, batch: 128 },
    { labels: { 'eval.inference': 'unmasked', 'mask.image_ratio': '0.75', 'train.batch_size': '256' }, top1: [0.2], seconds: 10, flops: 1, batch: 256 },
    { labels: { 'eval.inference': 'masked', 'mask.image_ratio': '0.5', 'train.batch_size': '128' }, top1: [0.25], seconds: 10, flops: 1, batch: 128 },
    { labels: { 'eval.inference': 'masked', 'mask.image_ratio': '0.75', 'train.batch_size': '256' }, top1: [0.15], seconds: 10, flops: 1, batch: 256 },
  ]));
  f.addExperiment({
    name: 'planned', description: '', file: null,
    axes: [{ name: 'model.preset', labels: ['tiny', 'small'] }, { name: 'mask.image_ratio', labels: ['0', '0.5'] }],
    report: { rows: 'mask.ratio', columns: null, metrics: ['zero_shot_top1'], baseline: { 'mask.image_ratio': '0.0' }, paper: null },
    spec: {},
  });
  f.close();
  db = openResultsDb(join(dir, 'results.db'));
});

after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function table(name: string): TableModel {
  const data = loadExperiment(db, name);
  return buildTable(data, resolveLayout(data));
}

function cellAt(model: TableModel, group: number, rowLabel: string, columnKey: string): string {
  const row = model.groups[group]!.rows.find((r) => r.label === rowLabel);
  assert.ok(row, `row ${rowLabel}`);
  const i = model.columns.findIndex((c) => c.key === columnKey);
  assert.ok(i >= 0, `column ${columnKey} in ${model.columns.map((c) => c.key).join(', ')}`);
  return cellLine(row.cells[i]!, model.columns[i]!);
}

describe('summarize', () => {
  test('mean, sample std and n; non-finite values ignored', () => {
    assert.deepEqual(summarize([0.3, 0.32, 0.34, Number.NaN])?.n, 3);
    const s = summarize([2, 4, 4, 4, 5, 5, 7, 9])!;
    assert.equal(s.mean, 5);
    assert.ok(Math.abs(s.std! - 2.138089935) < 1e-6);
    assert.equal(summarize([1])!.std, null);
    assert.equal(summarize([]), null);
  });
});

describe('list table (Table 1a shape)', () => {
  test('rows in declaration order, baseline shaded', () => {
    const m = table('ablation-a');
    assert.equal(m.kind, 'list');
    assert.deepEqual(m.groups[0]!.rows.map((r) => r.label), ['0', '0.5', '0.75']);
    assert.deepEqual(m.groups[0]!.rows.map((r) => r.baseline), [true, false, false]);
  });

  test('mean ± std over seeds as percentages, with n', () => {
    const m = table('ablation-a');
    assert.equal(cellAt(m, 0, '0', 'zero_shot_top1'), '32.0 ± 2.0 (n=3)');
    assert.equal(cellAt(m, 0, '0.5', 'zero_shot_top1'), '34.0 ± 1.0 (n=3)');
  });

  test('a failed seed is counted, not dropped', () => {
    const m = table('ablation-a');
    assert.equal(cellAt(m, 0, '0.75', 'zero_shot_top1'), '30.5 ± 0.7 (n=2/3, 1 failed)');
  });

  test('time and FLOPs relative to the baseline', () => {
    const m = table('ablation-a');
    assert.equal(cellAt(m, 0, '0', 'train_seconds_rel'), '1.00x (n=3)');
    assert.equal(cellAt(m, 0, '0.5', 'train_seconds_rel'), '0.50x (n=3)');
    assert.equal(cellAt(m, 0, '0.75', 'train_seconds_rel'), '0.33x (n=2/3, 1 failed)');
    assert.equal(cellAt(m, 0, '0.5', 'train_flops_rel'), '0.52x (n=3)');
  });

  test('peak memory in MiB and batch size from the config', () => {
    const m = table('ablation-a');
    assert.equal(cellAt(m, 0, '0.5', 'peak_memory_bytes'), '256.0 ± 0.0 (n=3)');
    assert.equal(cellAt(m, 0, '0.75', 'batch_size'), '256');
  });
});

describe('grid (Table 1b shape)', () => {
  test('metrics[0] per row x column, failed / running / missing cells marked', () => {
    const m = table('ablation-b');
    assert.equal(m.kind, 'grid');
    assert.deepEqual(m.columns.map((c) => c.columnLabel), ['0.5', '0.75']);
    const k = (label: string): string => `zero_shot_top1@mask.image_ratio=${label}`;
    assert.equal(cellAt(m, 0, '64', k('0.5')), '30.5 ± 0.7 (n=2)');
    assert.equal(cellAt(m, 0, '64', k('0.75')), 'failed');
    assert.equal(cellAt(m, 0, '128', k('0.75')), 'running');
    assert.equal(cellAt(m, 0, '256', k('0.75')), '—');
    const row128 = m.groups[0]!.rows[1]!;
    assert.equal(row128.cells[0]!.baseline, true);
    assert.equal(row128.cells[1]!.baseline, false);
    assert.equal(m.groups[0]!.rows[0]!.cells[1]!.status, 'failed');
    assert.match(m.groups[0]!.rows[0]!.cells[1]!.errors[0]!, /out of memory/);
    assert.equal(m.groups[0]!.rows[2]!.cells[1]!.status, 'missing');
  });
});

describe('other axes', () => {
  test('one block per model.preset, never averaged across it; ratios within the block', () => {
    const m = table('scaling');
    assert.deepEqual(m.groupAxes, ['model.preset']);
    assert.deepEqual(m.groups.map((g) => g.labels), [{ 'model.preset': 'tiny' }, { 'model.preset': 'small' }]);
    assert.equal(cellAt(m, 0, '0', 'zero_shot_top1'), '20.0 (n=1)');
    assert.equal(cellAt(m, 1, '0', 'zero_shot_top1'), '30.0 (n=1)');
    assert.equal(cellAt(m, 0, '0.5', 'train_seconds_rel'), '0.50x (n=1)');
    assert.equal(cellAt(m, 1, '0.5', 'train_seconds_rel'), '0.60x (n=1)');
  });
});

describe('settings that name nothing, and experiments without jobs', () => {
  test('every declared cell is shown as missing and the bad settings are stated', () => {
    const m = table('planned');
    assert.equal(m.rowsAxis, 'model.preset');
    assert.deepEqual(m.groups.map((g) => g.title), ['mask.image_ratio = 0', 'mask.image_ratio = 0.5']);
    assert.deepEqual(m.groups[0]!.rows.map((r) => r.cells[0]!.status), ['missing', 'missing']);
    assert.ok(m.notes.some((n) => n.startsWith('report.rows is "mask.ratio", which is not an axis')));
    assert.ok(m.notes.some((n) => n.includes('report.baseline mask.image_ratio = "0.0" is not one of its labels (0, 0.5)')));
  });
});

describe('zip groups', () => {
  test('an axis zipped with the columns axis of a grid fills the grid instead of splitting it into blocks', () => {
    const data = loadExperiment(db, 'zip-columns');
    const layout = resolveLayout(data);
    assert.deepEqual(layout.groupAxes, []);
    assert.deepEqual([...layout.columnCompanions.keys()], ['train.batch_size']);
    const m = buildTable(data, layout);
    assert.equal(m.groups.length, 1);
    const texts = m.groups[0]!.rows.map((r) => r.cells.map((c, i) => cellLine(c, m.columns[i]!)));
    assert.ok(texts.flat().every((t) => /\d/.test(t)), `every grid cell holds a number: ${JSON.stringify(texts)}`);
    assert.ok(m.notes.some((n) => /train\.batch_size varies together with mask\.image_ratio \(a zip\): 0\.5 -> 128, 0\.75 -> 256/.test(n)));
  });

  test('a batch zipped with the rows axis is the first column (Table 1(a) form), not one-row blocks', () => {
    const data = loadExperiment(db, 'zip');
    const layout = resolveLayout(data);
    assert.deepEqual(layout.groupAxes, []);
    assert.deepEqual([...layout.companions.keys()], ['train.batch_size']);
    const m = buildTable(data, layout);
    assert.equal(m.groups.length, 1);
    assert.equal(m.columns[0]!.key, 'batch_size');
    assert.deepEqual(m.groups[0]!.rows.map((r) => `${r.label} ${cellLine(r.cells[0]!, m.columns[0]!)}|${r.companions}`), ['0 64|', '0.5 128|', '0.75 256|']);
    assert.ok(m.notes.some((n) => n === 'train.batch_size varies together with mask.image_ratio (a zip), shown in the batch column.'), m.notes.join('\n'));
    assert.equal(cellAt(m, 0, '0.5', 'zero_shot_top1'), '32.0 ± 0.0 (n=2)');
    assert.equal(cellAt(m, 0, '0.75', 'train_seconds_rel'), '0.40x (n=2)');
    const paper = loadPaperResults(DEFAULT_PAPER_RESULTS)['table1a']!;
    const cmp = comparePaper('table1a', paper, layout, new TableBuilder(data, layout), data.jobs);
    assert.equal(cmp.comparisons.length, 3);
    assert.equal(cmp.comparisons[0]!.verdict, 'agrees');
    assert.deepEqual(cmp.comparisons[1]!.points.map((p) => p.ours?.mean), [1, 0.5, 0.4]);
    assert.equal(cmp.comparisons[1]!.verdict, 'agrees');
  });
});
