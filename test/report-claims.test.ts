/**
 * The claims scorecard and the baseline convergence check, on results databases written the way a sweep writes them:
 * one experiment per claim with data that agrees, disagrees, or cannot decide (too few seeds, a missing experiment,
 * a label the claim needs that the sweep lacks), and baselines that have and have not converged.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../framework/cli/report.js';
import { checkBaseline } from '../framework/report/baseline.js';
import { CLAIMS, MIN_SEEDS, scorecard, type ClaimResult, type Scorecard } from '../framework/report/claims.js';
import { FixtureDb, type FixtureJob } from '../framework/report/fixture.js';
import { DEFAULT_PAPER_RESULTS } from '../framework/report/generate.js';
import { loadExperiment, openResultsDb, type ExperimentData } from '../framework/report/load.js';
import { loadPaperResults } from '../framework/report/paper.js';
import { TAIL_GAIN_RESULT } from '../framework/report/tail-gain.js';
import type { ResolvedSpecRecord } from '../framework/store/types.js';

let dir: string;
let dbPath: string;
let card: Scorecard;
let data: Map<string, ExperimentData>;

function record(name: string, axes: [string, string[]][], metrics = ['zero_shot_top1']): ResolvedSpecRecord {
  return {
    name, description: '', file: null,
    axes: axes.map(([n, labels]) => ({ name: n, labels })),
    report: { rows: axes[0]![0], columns: null, metrics, baseline: null, paper: null },
    spec: {},
  };
}

interface Cell {
  labels: Record<string, string>;
  /** zero_shot_top1 per seed (fraction). */
  top1: number[];
  extra?: (seed: number) => Record<string, number>;
  train?: Record<string, number | null>;
  /** zero_shot_top1 at steps 10, 20, ... as a function of the step; absent = only the final evaluation. */
  curve?: (step: number) => number;
}

function jobs(cells: Cell[]): FixtureJob[] {
  return cells.flatMap((c) =>
    c.top1.map((v, seed): FixtureJob => ({
      labels: { ...c.labels, seed: String(seed) },
      seed,
      config: { mask: { image_ratio: Number(c.labels['mask.image_ratio'] ?? 0.5) }, train: { epochs: 2, time_budget_s: null, ...c.train } },
      status: 'done',
      results: { zero_shot_top1: v, zero_shot_top5: Math.min(0.95, v * 1.6), ...c.extra?.(seed) },
      metrics: {
        zero_shot_top1: c.curve
          ? Array.from({ length: 10 }, (_, i): [number, number, number] => [(i + 1) * 10, c.curve!((i + 1) * 10), (i + 1) * 5])
          : [[100, v, 50]],
      },
    })),
  );
}

function add(f: FixtureDb, name: string, axes: [string, string[]][], cells: Cell[], metrics?: string[]): void {
  f.addJobs(f.addExperiment(record(name, [...axes, ['seed', ['0', '1', '2']]], metrics)), jobs(cells));
}

const flat = (step: number): number => 0.5 - 0.3 * Math.exp(-step / 15);
const rising = (step: number): number => 0.2 + (0.3 * step) / 100;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'report-claims-'));
  dbPath = join(dir, 'results.db');
  const f = new FixtureDb(dbPath);
  const zip = { '0': '64', '0.5': '128', '0.75': '256' } as Record<string, string>;
  const a = (ratio: string, budget: string, top1: number[], more: Partial<Cell> = {}): Cell => ({
    labels: { 'mask.image_ratio': ratio, 'train.batch_size': zip[ratio]!, budget }, top1,
    train: budget === 'time' ? { epochs: null, time_budget_s: 60 } : {}, ...more,
  });
  // 1a agrees: at equal time 0.5 beats 0 by 4 points, std 1 each (SE 0.82). The equal-epochs mask-0 cell is the
  // baseline: flat over its last 20% (0.1 point), top-1 50%, top-5 80%.
  add(f, 'ablation-a', [['mask.image_ratio', ['0', '0.5', '0.75']], ['train.batch_size', ['64', '128', '256']], ['budget', ['epochs', 'time']]], [
    a('0', 'epochs', [0.5, 0.5, 0.5], { curve: flat }),
    a('0.5', 'epochs', [0.45, 0.46, 0.47]),
    a('0', 'time', [0.3, 0.31, 0.32]),
    a('0.5', 'time', [0.34, 0.35, 0.36]),
    a('0.75', 'time', [0.33, 0.33, 0.33]),
  ]);
  // 1b disagrees: the largest batch loses 4 points at mask 0.5 (the paper gains 1.9).
  add(f, 'ablation-b', [['train.batch_size', ['64', '128', '256']], ['mask.image_ratio', ['0.5', '0.75']]], [
    // Equal epochs: the batch of 256 takes a quarter of the batch of 64's steps, over the same pairs.
    { labels: { 'train.batch_size': '64', 'mask.image_ratio': '0.5' }, top1: [0.4, 0.41, 0.42], extra: () => ({ steps: 512, samples_seen: 32768 }) },
    { labels: { 'train.batch_size': '256', 'mask.image_ratio': '0.5' }, top1: [0.36, 0.37, 0.38], extra: () => ({ steps: 128, samples_seen: 32768 }) },
    { labels: { 'train.batch_size': '256', 'mask.image_ratio': '0.75' }, top1: [0.5, 0.5, 0.5] },
  ]);
  // 1c inconclusive: the right direction, but 2 seeds.
  add(f, 'ablation-c', [['text_mask', ['none', 'random', 'prioritized']]], [
    { labels: { text_mask: 'none' }, top1: [0.4, 0.41] },
    { labels: { text_mask: 'random' }, top1: [0.3, 0.31] },
  ]);
  // 1d agrees only because it is paired: seeds spread 10 points, but each seed's unmasked model beats its masked
  // evaluation by 1-1.5 points.
  add(f, 'ablation-d', [['eval.inference', ['unmasked', 'masked', 'ensemble']], ['mask.image_ratio', ['0.5', '0.75']]], [
    { labels: { 'eval.inference': 'unmasked', 'mask.image_ratio': '0.5' }, top1: [0.3, 0.4, 0.5] },
    { labels: { 'eval.inference': 'masked', 'mask.image_ratio': '0.5' }, top1: [0.29, 0.385, 0.49] },
  ]);
  // 1e agrees: the same jobs before (pretune_) and after tuning, +0.5 / +0.7 / +0.6 points.
  add(f, 'ablation-e', [['mask.image_ratio', ['0.5', '0.75']]], [
    { labels: { 'mask.image_ratio': '0.5' }, top1: [0.305, 0.317, 0.326], extra: (s) => ({ pretune_zero_shot_top1: [0.3, 0.31, 0.32][s]! }) },
  ]);
  // 1f disagrees: the paper's sign (-0.1 vs -0.2) but well within one standard error.
  add(f, 'ablation-f', [['loss.reconstruction_weight', ['0', '1']], ['mask.image_ratio', ['0.5', '0.75']]], [
    { labels: { 'loss.reconstruction_weight': '0', 'mask.image_ratio': '0.5' }, top1: [0.4, 0.41, 0.42] },
    { labels: { 'loss.reconstruction_weight': '1', 'mask.image_ratio': '0.5' }, top1: [0.399, 0.409, 0.419] },
  ]);
  // model: no experiment. data agrees (+3). schedule: the sweep has no 'schedule' row.
  add(f, 'scaling-data', [['scale', ['baseline', 'data']]], [
    { labels: { scale: 'baseline' }, top1: [0.3, 0.31, 0.32] },
    { labels: { scale: 'data' }, top1: [0.33, 0.34, 0.35] },
  ]);
  add(f, 'scaling-schedule', [['scale', ['schedule-short', 'baseline']]], [
    { labels: { scale: 'schedule-short' }, top1: [0.3, 0.31, 0.32] },
    { labels: { scale: 'baseline' }, top1: [0.33, 0.34, 0.35] },
  ]);
  // Baselines that have not converged: still rising and top-5 saturated; only a final evaluation.
  add(f, 'rising', [['mask.image_ratio', ['0']]], [{ labels: { 'mask.image_ratio': '0' }, top1: [0.5, 0.5, 0.5], curve: rising, extra: () => ({ zero_shot_top5: 0.995 }) }], ['zero_shot_top1', TAIL_GAIN_RESULT]);
  add(f, 'no-curve', [['mask.image_ratio', ['0']]], [{ labels: { 'mask.image_ratio': '0' }, top1: [0.5, 0.5, 0.5] }]);
  f.close();

  const db = openResultsDb(dbPath);
  try {
    data = new Map(['ablation-a', 'ablation-b', 'ablation-c', 'ablation-d', 'ablation-e', 'ablation-f', 'scaling-data', 'scaling-schedule', 'rising', 'no-curve'].map((n) => [n, loadExperiment(db, n)]));
  } finally {
    db.close();
  }
  card = scorecard((n) => data.get(n) ?? null, loadPaperResults(DEFAULT_PAPER_RESULTS), DEFAULT_PAPER_RESULTS);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function claim(id: string): ClaimResult {
  const c = card.claims.find((x) => x.id === id);
  assert.ok(c, `claim ${id}`);
  return c;
}

describe('verdicts', () => {
  test('one entry per claim of the paper, in order, with exactly the scorecard fields', () => {
    assert.deepEqual(card.claims.map((c) => c.id), ['1a', '1b', '1c', '1d', '1e', '1f', 'model', 'data', 'schedule']);
    assert.equal(CLAIMS.length, 9);
    for (const c of card.claims) assert.deepEqual(Object.keys(c), ['id', 'claim', 'paper', 'ours', 'verdict', 'seeds', 'effect', 'spread', 'notes']);
    assert.equal(MIN_SEEDS, 3);
  });

  test('agrees: the paper\'s sign and more than one standard error (1a at equal time, data)', () => {
    const a = claim('1a');
    assert.equal(a.verdict, 'agrees');
    assert.equal(a.seeds, 3);
    assert.ok(Math.abs(a.effect! - 4) < 1e-9, String(a.effect));
    assert.equal(a.spread, Number(Math.sqrt(2 / 3).toFixed(3)));
    assert.match(a.paper, /^69\.6 vs 68\.6 \(\+1\.0\)/);
    assert.match(a.claim, /ablation-a, budget = time: mask\.image_ratio = 0\.5 − mask\.image_ratio = 0/);
    assert.equal(claim('data').verdict, 'agrees');
    assert.ok(Math.abs(claim('data').effect! - 3) < 1e-9);
  });

  test('disagrees: the opposite sign (1b), or the right sign within one standard error (1f)', () => {
    const b = claim('1b');
    assert.equal(b.verdict, 'disagrees');
    assert.ok(Math.abs(b.effect! + 4) < 1e-9, String(b.effect));
    assert.match(b.paper, /^70\.4 vs 68\.5 \(\+1\.9\)/);
    // How the two sides trained differently is read from their results; what they share (the pairs) is not noted.
    assert.deepEqual(b.notes, ['the treatment took 128 optimiser steps, the control 512 (0.25x)']);
    const f = claim('1f');
    assert.equal(f.verdict, 'disagrees');
    assert.ok(f.effect! < 0 && Math.abs(f.effect!) < f.spread!, JSON.stringify(f));
    assert.deepEqual(f.notes, [], 'no results of steps or pairs: nothing to note');
  });

  test('paired claims use the per-seed differences (1d: seeds 10 points apart, every pair +1 to +1.5)', () => {
    const d = claim('1d');
    assert.equal(d.verdict, 'agrees');
    assert.ok(Math.abs(d.effect! - 7 / 6) < 1e-3, String(d.effect));
    assert.ok(Math.abs(d.spread! - 0.5 / Math.sqrt(3) / Math.sqrt(3)) < 1e-3, String(d.spread));
    assert.match(d.ours, /3 pairs/);
    const e = claim('1e');
    assert.equal(e.verdict, 'agrees');
    assert.ok(Math.abs(e.effect! - 0.6) < 1e-9, String(e.effect));
  });

  test('inconclusive: too few seeds, no experiment, or a row the sweep does not have', () => {
    const c = claim('1c');
    assert.equal(c.verdict, 'inconclusive');
    assert.equal(c.seeds, 2);
    assert.match(c.ours, /2 seeds, 3 needed/);
    const m = claim('model');
    assert.equal(m.verdict, 'inconclusive');
    assert.equal(m.ours, 'no experiment scaling-model in the database');
    assert.equal(m.effect, null);
    const s = claim('schedule');
    assert.equal(s.verdict, 'inconclusive');
    assert.match(s.ours, /scaling-schedule has no scale = schedule \(labels: schedule-short, baseline\)/);
  });
});

describe('bad paper numbers', () => {
  test('a paper file without a table or a row a claim needs: an error naming the claim, the file and what it has', () => {
    const papers = loadPaperResults(DEFAULT_PAPER_RESULTS);
    const { table8: _, ...noTable8 } = papers;
    assert.throws(() => scorecard((n) => data.get(n) ?? null, noTable8, 'p.json'), /claim model needs "table8" in p\.json, which has: table1a, table1b/);
    const noRow = { ...papers, table1c: { ...papers['table1c']!, series: [{ ...papers['table1c']!.series[0]!, values: { none: 68.2 } }] } };
    assert.throws(() => scorecard((n) => data.get(n) ?? null, noRow, 'p.json'), /claim 1c needs the zero_shot_top1 value of row "random" of table1c in p\.json; the table's value series are: zero_shot_top1 \(none\)/);
  });
});

describe('baseline convergence', () => {
  test('converged: flat over the last 20% of training, top-1 in range, top-5 under 99%', () => {
    assert.equal(card.baseline_converged, true, JSON.stringify(card.baseline));
    assert.equal(card.baseline.experiment, 'ablation-a');
    assert.match(card.baseline.selection, /mask\.image_ratio = 0, train\.batch_size = 64, budget = epochs/);
    assert.equal(card.baseline.seeds, 3);
    assert.ok(card.baseline.tail_gain! > 0 && card.baseline.tail_gain! < 1, String(card.baseline.tail_gain));
    assert.ok(Math.abs(card.baseline.top1! - 50) < 1e-9);
  });

  test('not converged: still rising and top-5 saturated; a dedicated baseline experiment comes first', () => {
    const b = checkBaseline((n) => (n === 'flip-base' ? data.get('rising')! : (data.get(n) ?? null)));
    assert.equal(b.converged, false);
    assert.equal(b.experiment, 'rising');
    assert.ok(Math.abs(b.tail_gain! - 6) < 1e-9, String(b.tail_gain));
    assert.ok(b.problems.some((p) => p.includes('the last 20% of training adds 6.00 points')), b.problems.join('\n'));
    assert.ok(b.problems.some((p) => p.includes('zero-shot top-5 is 99.5%')), b.problems.join('\n'));
  });

  test('every finished job with a zero-shot curve has the gain of its last 20% as a result, which a table shows in points', async () => {
    // rising: 0.2 + 0.003 x step at steps 10 ... 100, so 0.44 at step 80 and 0.5 at the end: +6 points.
    for (const job of data.get('rising')!.jobs) assert.ok(Math.abs(job.results.get(TAIL_GAIN_RESULT)! - 0.06) < 1e-9, String(job.results.get(TAIL_GAIN_RESULT)));
    for (const job of data.get('no-curve')!.jobs) assert.equal(job.results.has(TAIL_GAIN_RESULT), false, 'one evaluation is no curve');
    const out = join(dir, 'tail-gain-report');
    const code = await main(['--experiment', 'rising', '--db', dbPath, '--out', out], { out: () => {}, err: () => {} });
    assert.equal(code, 0);
    const table = readFileSync(join(out, 'rising', 'table.md'), 'utf8');
    assert.match(table, /\| zero-shot top-1 gained in the last 20% \(points\) \|/);
    assert.match(table, /\| \+6\.00 ± 0\.00 \|/);
  });

  test('not converged: no evaluation curve to read', () => {
    const b = checkBaseline((n) => (n === 'ablation-a' ? data.get('no-curve')! : null));
    assert.equal(b.converged, false);
    assert.equal(b.experiment, null);
    assert.match(b.problems[0]!, /eval\.every > 0/);
  });
});

describe('npm run report -- --all', () => {
  test('writes claims.json and the index page opens with the scorecard', async () => {
    const out = join(dir, 'reports');
    let stdout = '';
    const code = await main(['--all', '--db', dbPath, '--out', out], { out: (s) => (stdout += s), err: (s) => (stdout += s) });
    assert.equal(code, 0, stdout);
    assert.match(stdout, /claims: .*claims\.json \(4 agree, 2 disagree, 3 inconclusive; baseline converged: true\)/);
    const json = JSON.parse(readFileSync(join(out, 'claims.json'), 'utf8')) as Scorecard;
    assert.equal(json.baseline_converged, true);
    assert.deepEqual(json.claims.map((c) => c.verdict), card.claims.map((c) => c.verdict));
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    const scoreAt = index.indexOf('<h2 id="claims">');
    assert.ok(scoreAt > 0 && scoreAt < index.indexOf('<h2 id="experiments">'));
    assert.ok(index.includes('Rule: Each claim is one difference'));
    assert.ok(index.includes('<th>claim</th><th>paper</th><th>ours</th><th>verdict</th><th>seeds</th><th>effect ± spread</th>'));
    assert.ok(index.includes('+4.00 ± 0.82'));
  });
});
