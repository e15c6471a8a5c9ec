/**
 * Relative data locations in a spec are made absolute at load time against the loading command's working directory
 * (framework/spec/data-paths.ts), so that every executor's jobs read the same files; labels keep them as written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expandGrid } from '../framework/grid/expand.js';
import { absoluteDataPath } from '../framework/spec/data-paths.js';
import { loadSpec } from '../framework/spec/load-spec.js';
import { ROOT, runCli, tempDir } from './helpers.js';

test('shard patterns: each :: part made absolute, braces kept unexpanded and unnormalized; data.path resolved', () => {
  assert.equal(absoluteDataPath('data.train', 'shards/{000..009}.tar::/abs/x-{0..1}.tar', '/work'), '/work/shards/{000..009}.tar::/abs/x-{0..1}.tar');
  assert.equal(absoluteDataPath('data.val', '{a,b}/../v.tar', '/work/'), '/work/{a,b}/../v.tar', 'not normalized: the brace group decides what .. applies to');
  assert.equal(absoluteDataPath('data.path', 'imgs/../pairs.jsonl', '/work'), '/work/pairs.jsonl');
  assert.equal(absoluteDataPath('data.path', '/data/pairs.jsonl', '/work'), '/data/pairs.jsonl');
  for (const v of [null, '', undefined]) assert.equal(absoluteDataPath('data.train', v, '/work'), v);
});

test('loadSpec: base, axis and include values resolve against the working directory, not the spec folder; labels as written', () => {
  const work = tempDir('spec-data-paths-');
  const specDir = join(work, 'specs');
  mkdirSync(specDir);
  writeFileSync(join(specDir, 's.yaml'), `name: rel
base:
  data: { dataset: webdataset, val: "val/v-{0..1}.tar", classnames: [a, b] }
axes:
  data.train: ["train/t-{0..3}.tar", "/abs/t.tar"]
include:
  - { data.train: "more/t.tar::other/u.tar" }
`);
  const before = process.cwd();
  process.chdir(work);
  try {
    const spec = loadSpec(join('specs', 's.yaml'));
    const jobs = expandGrid(spec);
    assert.deepEqual(
      jobs.map((j) => [j.labels['data.train'], j.config.data.train, j.config.data.val]),
      [
        ['train/t-{0..3}.tar', `${work}/train/t-{0..3}.tar`, `${work}/val/v-{0..1}.tar`],
        ['/abs/t.tar', '/abs/t.tar', `${work}/val/v-{0..1}.tar`],
        ['more/t.tar::other/u.tar', `${work}/more/t.tar::${work}/other/u.tar`, `${work}/val/v-{0..1}.tar`],
      ],
    );
    // The spec as recorded keeps the values as the user wrote them.
    assert.equal((spec.merged.base as { data: { val: string } }).data.val, 'val/v-{0..1}.tar');
    const set = loadSpec(join('specs', 's.yaml'), { set: ['data.path=pairs.jsonl'] });
    assert.equal((set.base as { data: { path: string } }).data.path, join(work, 'pairs.jsonl'));
  } finally {
    process.chdir(before);
    rmSync(work, { recursive: true, force: true });
  }
});

test('sweep CLI: a relative shard pattern that matches no file names the pattern made absolute and the files it looked for', () => {
  const work = tempDir('spec-data-paths-cli-');
  const rel = relative(ROOT, join(work, 'none', 's-{0..1}.tar'));
  writeFileSync(join(work, 'spec.yaml'), `name: rel-cli
base:
  data: { dataset: webdataset, train: "${rel}", val: "${rel}", train_size: 8, eval_size: 4, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 4, steps: 1 }
`);
  // runCli runs from the repository root: the pattern is read relative to it.
  const run = runCli('sweep', [join(work, 'spec.yaml'), '--db', join(work, 'r.db'), '--dry-run']);
  const out = run.stdout + run.stderr;
  assert.equal(run.status, 2, out);
  assert.ok(out.includes(`data.train: shard pattern "${ROOT}/${rel}" matches no file (2 names: ${join(work, 'none', 's-0.tar')} ... ${join(work, 'none', 's-1.tar')})`), out);
  rmSync(work, { recursive: true, force: true });
});
