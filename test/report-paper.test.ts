import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveLayout } from '../framework/report/axes.js';
import { jobsFor } from '../framework/report/demo-fixtures.js';
import { FixtureDb, type FixtureJob } from '../framework/report/fixture.js';
import { DEFAULT_PAPER_RESULTS } from '../framework/report/generate.js';
import { loadExperiment, openResultsDb } from '../framework/report/load.js';
import { comparePaper, loadPaperResults, type PaperComparison, type PaperResults } from '../framework/report/paper.js';
import type { Database } from '../framework/report/sqlite.js';
import type { ResolvedSpecRecord } from '../framework/store/types.js';
import { TableBuilder } from '../framework/report/table.js';

let dir: string;
let db: Database;
let papers: PaperResults;

function record(name: string, axes: [string, string[]][], report: Partial<ResolvedSpecRecord['report']>): ResolvedSpecRecord {
  return {
    name, description: '', file: null,
    axes: axes.map(([n, labels]) => ({ name: n, labels })),
    report: { rows: null, columns: null, metrics: ['zero_shot_top1'], baseline: null, paper: null, ...report },
    spec: {},
  };
}

function withPretune(jobs: FixtureJob[], before: number[]): FixtureJob[] {
  return jobs.map((j, i) => ({ ...j, results: { ...j.results, pretune_zero_shot_top1: before[i]! } }));
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-paper-'));
  const f = new FixtureDb(join(dir, 'results.db'));
  // Table 1(e): the same jobs before (pretune_) and after unmasked tuning; tuning helps at 0.5, hurts at 0.75.
  const e = f.addExperiment(record('tune', [['mask.image_ratio', ['0.5', '0.75']], ['seed', ['0', '1']]], { paper: 'table1e' }));
  f.addJobs(e, withPretune(jobsFor([
    { labels: { 'mask.image_ratio': '0.5' }, top1: [0.31, 0.33], seconds: 10, flops: 1, batch: 64 },
    { labels: { 'mask.image_ratio': '0.75' }, top1: [0.25, 0.25], seconds: 10, flops: 1, batch: 64 },
  ]), [0.3, 0.3, 0.27, 0.27]));
  // Table 1(c) under another axis name: read from our rows axis, labels equal.
  const c = f.addExperiment(record('text', [['mask.text_strategy', ['none', 'random', 'prioritized']]], { paper: 'table1c', baseline: { 'mask.text_strategy': 'none' } }));
  f.addJobs(c, jobsFor([
    { labels: { 'mask.text_strategy': 'none' }, top1: [0.4], seconds: 10, flops: 1, batch: 64 },
    { labels: { 'mask.text_strategy': 'random' }, top1: [0.35], seconds: 9, flops: 1, batch: 64 },
    { labels: { 'mask.text_strategy': 'prioritized' }, top1: [0.38], seconds: 9, flops: 1, batch: 64 },
  ]));
  // Table 8 with only two of the six rows present, labels as the paper file expects.
  const s = f.addExperiment(record('scale', [['scale', ['baseline', 'model']]], { paper: 'table8' }));
  f.addJobs(s, jobsFor([
    { labels: { scale: 'baseline' }, top1: [0.2], seconds: 10, flops: 1, batch: 64 },
    { labels: { scale: 'model' }, top1: [0.2], seconds: 10, flops: 1, batch: 64 },
  ]));
  f.close();
  db = openResultsDb(join(dir, 'results.db'));
  papers = loadPaperResults(DEFAULT_PAPER_RESULTS);
});

after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function compare(name: string): PaperComparison {
  const data = loadExperiment(db, name);
  const layout = resolveLayout(data);
  const key = layout.report.paper!;
  return comparePaper(key, papers[key]!, layout, new TableBuilder(data, layout), data.jobs);
}

describe('reports/paper-results.json', () => {
  test('holds Table 1 (a)-(f) and Table 8 with the paper numbers', () => {
    assert.deepEqual(Object.keys(papers).sort(), ['table1a', 'table1b', 'table1c', 'table1d', 'table1e', 'table1f', 'table8']);
    assert.deepEqual(papers['table1a']!.series[0]!.values, { '0': 68.6, '0.5': 69.6, '0.75': 68.2 });
    assert.equal(papers['table1b']!.series[1]!.values['65536'], 68.2);
    assert.equal(papers['table1d']!.series[1]!.values['masked'], 60.9);
    assert.equal(papers['table8']!.series[0]!.values['model+data+schedule'], 78.8);
    const raw = JSON.parse(readFileSync(DEFAULT_PAPER_RESULTS, 'utf8')) as Record<string, unknown>;
    assert.ok(typeof raw['_about'] === 'string');
  });
});

describe('comparisons', () => {
  test('Table 1(e): before/after tuning read from pretune_ results, per mask ratio', () => {
    const cmp = compare('tune');
    const [half, most] = cmp.comparisons;
    assert.equal(half!.verdict, 'agrees');
    assert.deepEqual(half!.points.map((p) => p.ours?.mean), [30, 32]);
    assert.equal(most!.verdict, 'disagrees');
    assert.equal(most!.statement, 'disagrees: paper 69.5 > 68.2 at + unmasked tuning vs no tuning, ours 25.0 < 27.0.');
  });

  test('Table 1(c) read from our rows axis when the axis names differ; ratio series compares relative time', () => {
    const cmp = compare('text');
    assert.equal(cmp.rowsAxis, 'mask.text_strategy');
    assert.ok(cmp.notes.some((n) => n.includes('read from our axis mask.text_strategy')));
    assert.equal(cmp.comparisons[0]!.verdict, 'agrees');
    const time = cmp.comparisons[1]!;
    assert.equal(time.series.kind, 'ratio');
    assert.deepEqual(time.points.map((p) => p.ours?.mean), [1, 0.9, 0.9]);
    assert.equal(time.verdict, 'agrees');
  });

  test('rows missing from our sweep are named; a tie where the paper has an order disagrees', () => {
    const cmp = compare('scale');
    assert.ok(cmp.notes.some((n) => n.includes('not in our sweep: data, schedule, model+data, model+data+schedule')), cmp.notes.join('\n'));
    const s = cmp.comparisons[0]!;
    assert.equal(s.verdict, 'disagrees');
    assert.match(s.statement, /paper 75\.5 > 74\.3 at H \(model\) vs L, 400M, 12\.8B, ours 20\.0 = 20\.0/);
    assert.match(s.statement, /4 of the paper's rows have no finished result of ours/);
  });
});
