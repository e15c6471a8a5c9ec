/**
 * Times report generation on a large database: 1,000 jobs (5 mask ratios x 4 batch sizes x 50 seeds, 2% failed),
 * each with 100 steps of loss / lr / elapsed_seconds and 10 zero-shot evaluations (310 metric rows per job).
 *   npx tsx framework/report/bench-report.ts [--jobs N] [--keep DIR]
 * Prints the seconds of each phase; the database build is not counted.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FixtureDb, type FixtureJob } from './fixture.js';
import { reportAll } from './generate.js';
import { openResultsDb } from './load.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '1000' }, keep: { type: 'string' } } });
const total = Number(values.jobs);
const ratios = ['0', '0.25', '0.5', '0.75', '0.9'];
const batches = ['64', '128', '256', '512'];
const seeds = Math.ceil(total / (ratios.length * batches.length));
const STEPS = 100;

const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'bench-report-'));
const dbPath = join(dir, 'results.db');
mkdirSync(dir, { recursive: true });
for (const suffix of ['', '-wal', '-shm']) rmSync(dbPath + suffix, { force: true });

let t = performance.now();
const f = new FixtureDb(dbPath);
const id = f.addExperiment(
  {
    name: 'bench',
    description: `${total} jobs x ${STEPS} steps`,
    file: null,
    axes: [
      { name: 'mask.image_ratio', labels: ratios },
      { name: 'train.batch_size', labels: batches },
      { name: 'seed', labels: Array.from({ length: seeds }, (_, i) => String(i)) },
    ],
    report: {
      rows: 'mask.image_ratio',
      columns: null,
      metrics: ['zero_shot_top1', 'zero_shot_top5', 'train_seconds', 'train_flops', 'peak_memory_bytes'],
      baseline: { 'mask.image_ratio': '0' },
      paper: 'table1a',
    },
    spec: { name: 'bench' },
  },
  'name: bench\n',
);
const jobs: FixtureJob[] = [];
let n = 0;
for (const r of ratios) {
  for (const b of batches) {
    for (let s = 0; s < seeds && n < total; s++, n++) {
      const labels = { 'mask.image_ratio': r, 'train.batch_size': b, seed: String(s) };
      const config = { seed: s, mask: { image_ratio: Number(r) }, train: { batch_size: Number(b), steps: STEPS } };
      if (n % 50 === 7) {
        jobs.push({ labels, config, seed: s, status: 'failed', error: 'Error: loss is NaN at step 42' });
        continue;
      }
      const speed = 1 - Number(r) * 0.6;
      const acc = 0.3 + 0.02 * Math.log2(Number(b) / 64) - 0.05 * Number(r) ** 2 + 0.01 * Math.sin(n);
      const loss: [number, number, number][] = [];
      const lr: [number, number, number][] = [];
      const el: [number, number, number][] = [];
      const zs: [number, number, number][] = [];
      for (let step = 1; step <= STEPS; step++) {
        const e = step * speed;
        loss.push([step, 4 * Math.exp(-step / 40) + 0.5, e]);
        lr.push([step, 1e-3 * Math.min(1, step / 10), e]);
        el.push([step, e, e]);
        if (step % 10 === 0) zs.push([step, (acc * step) / STEPS, e]);
      }
      jobs.push({
        labels, config, seed: s, status: 'done',
        results: { zero_shot_top1: acc, zero_shot_top5: acc * 2, train_seconds: STEPS * speed, train_flops: 1e12 * speed, peak_memory_bytes: 2 ** 20 * Number(b) },
        metrics: { loss, lr, elapsed_seconds: el, zero_shot_top1: zs },
      });
    }
  }
}
f.addJobs(id, jobs);
f.close();
const buildSeconds = (performance.now() - t) / 1000;

t = performance.now();
const db = openResultsDb(dbPath);
const { experiments } = await reportAll(db, { dbPath, outDir: join(dir, 'reports') });
db.close();
const seconds = (performance.now() - t) / 1000;
const r = experiments[0]!;
const rows = jobs.reduce((a, j) => a + Object.values(j.metrics ?? {}).reduce((x, p) => x + p.length, 0), 0);
console.log(`database: ${jobs.length} jobs, ${rows} metric rows, built in ${buildSeconds.toFixed(2)} s (${dbPath})`);
console.log(`phases: load ${r.seconds.load.toFixed(3)} s, table+paper ${r.seconds.table.toFixed(3)} s, charts ${r.seconds.charts.toFixed(3)} s, write ${r.seconds.write.toFixed(3)} s (${r.files.length} files)`);
console.log(`report generation: ${seconds.toFixed(2)} s`);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
