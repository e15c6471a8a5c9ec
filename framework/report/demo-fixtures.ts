/**
 * Small, realistic experiments for the report tests (and for trying the report without running a sweep):
 * several seeds, a failed job, a missing and a running grid cell, group axes, and a hostile name.
 */
import type { ResolvedSpecRecord } from '../store/types.js';
import { FixtureDb, type FixtureJob } from './fixture.js';

export const XSS = '<script>alert(1)</script>';

interface CellSpec {
  labels: Record<string, string>;
  /** zero_shot_top1 per seed (fraction); null = that seed failed. */
  top1: (number | null)[];
  seconds: number;
  flops: number;
  batch: number;
  status?: FixtureJob['status'];
  error?: string;
}

function config(labels: Record<string, string>, batch: number, seed: number): unknown {
  return {
    seed,
    model: { preset: labels['model.preset'] ?? 'small' },
    mask: { image_ratio: Number(labels['mask.image_ratio'] ?? 0) },
    train: { batch_size: batch, steps: 20 },
  };
}

function curves(top1: number, seconds: number): NonNullable<FixtureJob['metrics']> {
  const loss: [number, number, number][] = [];
  const acc: [number, number, number][] = [];
  for (let s = 1; s <= 20; s++) loss.push([s, 4 - 2.5 * (s / 20) + 0.05 * Math.sin(s), (seconds * s) / 20]);
  for (const s of [5, 10, 15, 20]) acc.push([s, top1 * (0.4 + (0.6 * s) / 20), (seconds * s) / 20]);
  return { loss, zero_shot_top1: acc };
}

export function jobsFor(cells: readonly CellSpec[]): FixtureJob[] {
  const jobs: FixtureJob[] = [];
  for (const c of cells) {
    c.top1.forEach((top1, seed) => {
      const labels = { ...c.labels, seed: String(seed) };
      if (top1 === null || c.status === 'failed') {
        jobs.push({ labels, seed, config: config(c.labels, c.batch, seed), status: 'failed', attempts: 2, error: c.error ?? 'Error: loss is NaN at step 7' });
        return;
      }
      if (c.status && c.status !== 'done') {
        jobs.push({ labels, seed, config: config(c.labels, c.batch, seed), status: c.status });
        return;
      }
      jobs.push({
        labels,
        seed,
        config: config(c.labels, c.batch, seed),
        status: 'done',
        results: {
          zero_shot_top1: top1,
          zero_shot_top5: Math.min(1, top1 * 2),
          retrieval_i2t_r1: top1 / 2,
          retrieval_t2i_r1: top1 / 2.2,
          train_seconds: c.seconds,
          train_flops: c.flops,
          peak_memory_bytes: 256 * 1024 * 1024 * (c.batch / 128),
          samples_seen: 20 * c.batch,
          steps: 20,
          final_loss: 1.5,
        },
        metrics: curves(top1, c.seconds),
      });
    });
  }
  return jobs;
}

function resolved(name: string, axes: [string, string[]][], report: Partial<ResolvedSpecRecord['report']>, description = ''): ResolvedSpecRecord {
  return {
    name,
    description,
    file: `experiments/${name}.yaml`,
    axes: axes.map(([n, labels]) => ({ name: n, labels })),
    report: { rows: null, columns: null, metrics: ['zero_shot_top1'], baseline: null, paper: null, ...report },
    spec: { name, description, axes: Object.fromEntries(axes) },
  };
}

const METRICS = ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'train_seconds', 'train_flops', 'peak_memory_bytes'];

/** Table 1(a) where our ordering matches the paper's: 0.5 > 0 > 0.75. Seed 2 of 0.75 failed. */
export function addAblationA(f: FixtureDb, name = 'ablation-a', agree = true): number {
  const rec = resolved(name, [['mask.image_ratio', ['0', '0.5', '0.75']], ['seed', ['0', '1', '2']]], {
    rows: 'mask.image_ratio', metrics: METRICS, baseline: { 'mask.image_ratio': '0' }, paper: 'table1a',
  }, 'Table 1(a): image masking ratio');
  const id = f.addExperiment(rec, `name: ${name}\nextends: base.yaml\naxes:\n  mask.image_ratio: [0, 0.5, 0.75]\nseeds: 3\n`);
  f.addJobs(id, jobsFor([
    { labels: { 'mask.image_ratio': '0' }, top1: agree ? [0.3, 0.32, 0.34] : [0.33, 0.33, 0.33], seconds: 100, flops: 1e12, batch: 64 },
    { labels: { 'mask.image_ratio': '0.5' }, top1: agree ? [0.33, 0.35, 0.34] : [0.312, 0.312, 0.312], seconds: 50, flops: 0.52e12, batch: 128 },
    { labels: { 'mask.image_ratio': '0.75' }, top1: agree ? [0.31, 0.3, null] : [0.29, 0.29, null], seconds: 33, flops: 0.28e12, batch: 256 },
  ]));
  return id;
}

/** Table 1(b) grid: batch x mask ratio; (256, 0.75) never ran, (128, 0.75) is still running, (64, 0.75) failed. */
export function addAblationB(f: FixtureDb): number {
  const rec = resolved('ablation-b', [['train.batch_size', ['64', '128', '256']], ['mask.image_ratio', ['0.5', '0.75']], ['seed', ['0', '1']]], {
    rows: 'train.batch_size', columns: 'mask.image_ratio', metrics: ['zero_shot_top1', 'train_seconds'], baseline: { 'train.batch_size': '128', 'mask.image_ratio': '0.5' }, paper: 'table1b',
  }, 'Table 1(b): batch size');
  const id = f.addExperiment(rec, 'name: ablation-b\n');
  f.addJobs(id, jobsFor([
    { labels: { 'train.batch_size': '64', 'mask.image_ratio': '0.5' }, top1: [0.3, 0.31], seconds: 50, flops: 1e12, batch: 64 },
    { labels: { 'train.batch_size': '64', 'mask.image_ratio': '0.75' }, top1: [null, null], seconds: 30, flops: 1e12, batch: 64, error: 'Error: worker exited with code 137 (out of memory)' },
    { labels: { 'train.batch_size': '128', 'mask.image_ratio': '0.5' }, top1: [0.32, 0.33], seconds: 50, flops: 1e12, batch: 128 },
    { labels: { 'train.batch_size': '128', 'mask.image_ratio': '0.75' }, top1: [0.3, 0.3], seconds: 30, flops: 1e12, batch: 128, status: 'running' },
    { labels: { 'train.batch_size': '256', 'mask.image_ratio': '0.5' }, top1: [0.34, 0.35], seconds: 50, flops: 1e12, batch: 256 },
  ]));
  return id;
}

/** Two model presets (a group axis) x mask ratio rows: the table has one block per preset. */
export function addScaling(f: FixtureDb): number {
  const rec = resolved('scaling', [['model.preset', ['tiny', 'small']], ['mask.image_ratio', ['0', '0.5']], ['seed', ['0']]], {
    rows: 'mask.image_ratio', metrics: ['zero_shot_top1', 'train_seconds', 'train_flops'], baseline: { 'mask.image_ratio': '0' },
  }, 'model size x mask ratio');
  const id = f.addExperiment(rec, 'name: scaling\n');
  f.addJobs(id, jobsFor([
    { labels: { 'model.preset': 'tiny', 'mask.image_ratio': '0' }, top1: [0.2], seconds: 40, flops: 1e11, batch: 64 },
    { labels: { 'model.preset': 'tiny', 'mask.image_ratio': '0.5' }, top1: [0.21], seconds: 20, flops: 0.5e11, batch: 64 },
    { labels: { 'model.preset': 'small', 'mask.image_ratio': '0' }, top1: [0.3], seconds: 100, flops: 1e12, batch: 64 },
    { labels: { 'model.preset': 'small', 'mask.image_ratio': '0.5' }, top1: [0.31], seconds: 60, flops: 0.5e12, batch: 64 },
  ]));
  return id;
}

/**
 * Table 1(a) as the suite runs it: mask ratio zipped with the batch, in an equal-epochs and an equal-time block
 * (budget axis), 3 seeds whose evaluation points fall at slightly different seconds, many result columns (a table
 * wider than a 1400 px page).
 */
export function addBudgetAblationA(f: FixtureDb, name = 'ablation-a-budget'): number {
  const ratios = ['0', '0.5', '0.75'];
  const batches = ['64', '128', '256'];
  const rec = resolved(name, [['mask.image_ratio', ratios], ['train.batch_size', batches], ['budget', ['epochs', 'time']], ['seed', ['0', '1', '2']]], {
    rows: 'mask.image_ratio',
    metrics: ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_t2i_r1', 'train_seconds', 'train_flops', 'samples_seen', 'peak_memory_bytes', 'final_loss'],
    baseline: { 'mask.image_ratio': '0' },
    paper: 'table1a',
  }, 'Table 1(a) at equal epochs (batch growing with the ratio) and at equal time');
  const id = f.addExperiment(rec, `name: ${name}
zip:
  - mask.image_ratio: [0, 0.5, 0.75]
    train.batch_size: [64, 128, 256]
axes:
  budget: { epochs: { train.epochs: 2 }, time: { train.epochs: null, train.time_budget_s: 60 } }
seeds: [0, 1, 2]
`);
  const jobs: FixtureJob[] = [];
  for (const budget of ['epochs', 'time'] as const) {
    ratios.forEach((ratio, r) => {
      const batch = Number(batches[r]);
      const seconds = budget === 'time' ? 60 : [100, 55, 40][r]!;
      const samples = budget === 'time' ? [12000, 21000, 30000][r]! : 2048;
      const top1 = budget === 'time' ? [0.34, 0.37, 0.35][r]! : [0.36, 0.35, 0.31][r]!;
      for (const seed of [0, 1, 2]) {
        const final = top1 + 0.01 * (seed - 1);
        const stretch = 1 + 0.04 * seed;
        const curve: [number, number, number][] = [1, 2, 3, 4, 5].map((k) => [k * 10, final * (1 - 0.5 * Math.exp(-k)) / (1 - 0.5 * Math.exp(-5)), (seconds * k * stretch) / 5]);
        jobs.push({
          labels: { 'mask.image_ratio': ratio, 'train.batch_size': batches[r]!, budget, seed: String(seed) },
          seed,
          config: {
            seed,
            data: { train_size: 1024 },
            mask: { image_ratio: Number(ratio) },
            train: { batch_size: batch, epochs: budget === 'epochs' ? 2 : null, time_budget_s: budget === 'time' ? 60 : null, steps: null, samples: null },
          },
          status: 'done',
          results: {
            zero_shot_top1: final, zero_shot_top5: Math.min(0.98, final * 2.2), retrieval_i2t_r1: final / 2, retrieval_t2i_r1: final / 2.1,
            train_seconds: seconds * stretch, train_flops: 1e12 * (1 - Number(ratio)) * (samples / 2048), samples_seen: samples,
            peak_memory_bytes: 256 * 1024 * 1024 * (batch / 64) * (1 - Number(ratio) / 2), final_loss: 1.5 + r / 10,
          },
          metrics: { zero_shot_top1: curve, loss: curve.map(([s, v, e]) => [s, 4 - 3 * v, e]) },
        });
      }
    });
  }
  f.addJobs(id, jobs);
  return id;
}

/** An experiment whose name, description, spec and error hold markup. */
export function addHostile(f: FixtureDb): number {
  const rec = resolved(XSS, [['mask.image_ratio', ['0', '<b>0.5</b>']], ['seed', ['0']]], { rows: 'mask.image_ratio', metrics: ['zero_shot_top1'] }, `description ${XSS}`);
  const id = f.addExperiment(rec, `name: "${XSS}"\ndescription: "<img src=x onerror=alert(2)>"\n`);
  f.addJobs(id, jobsFor([
    { labels: { 'mask.image_ratio': '0' }, top1: [0.3], seconds: 10, flops: 1e10, batch: 64 },
    { labels: { 'mask.image_ratio': '<b>0.5</b>' }, top1: [null], seconds: 10, flops: 1e10, batch: 64, error: `Error: <img src=x onerror=alert(3)> ${XSS}` },
  ]));
  return id;
}

export function buildDemoDatabase(path: string): void {
  const f = new FixtureDb(path);
  try {
    addAblationA(f);
    addAblationA(f, 'ablation-a-disagree', false);
    addAblationB(f);
    addBudgetAblationA(f);
    addScaling(f);
    addHostile(f);
  } finally {
    f.close();
  }
}
