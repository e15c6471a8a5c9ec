import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expandGrid } from '../framework/grid/expand.js';
import { configHash, canonicalJson } from '../framework/grid/config-hash.js';
import { loadSpec } from '../framework/spec/load-spec.js';
import { writeFiles } from './helpers.js';
import { deepMerge, resolveConfig } from '../models/config.js';

function grid(yaml: string, extra: Record<string, string> = {}, set?: string[]) {
  const dir = writeFiles({ 'spec.yaml': yaml, ...extra });
  return expandGrid(loadSpec(join(dir, 'spec.yaml'), { set }));
}
const labels = (jobs: ReturnType<typeof grid>) => jobs.map((j) => j.labels);

const cases: { name: string; yaml: string; expect: Record<string, string>[]; extra?: Record<string, string>; set?: string[] }[] = [
  { name: 'no axes: one job of the base config', yaml: 'name: a\n', expect: [{}] },
  {
    name: 'axes expand as a product in declaration order',
    yaml: 'name: a\naxes:\n  mask.image_ratio: [0, 0.5]\n  train.batch_size: [8, 16]\n',
    expect: [
      { 'mask.image_ratio': '0', 'train.batch_size': '8' },
      { 'mask.image_ratio': '0', 'train.batch_size': '16' },
      { 'mask.image_ratio': '0.5', 'train.batch_size': '8' },
      { 'mask.image_ratio': '0.5', 'train.batch_size': '16' },
    ],
  },
  {
    name: 'a zip group varies its paths together',
    yaml: 'name: a\nzip:\n  - mask.image_ratio: [0, 0.5, 0.75]\n    train.batch_size: [16, 32, 64]\n',
    expect: [
      { 'mask.image_ratio': '0', 'train.batch_size': '16' },
      { 'mask.image_ratio': '0.5', 'train.batch_size': '32' },
      { 'mask.image_ratio': '0.75', 'train.batch_size': '64' },
    ],
  },
  {
    name: 'named variants set several fields under one label',
    yaml: 'name: a\naxes:\n  text_mask:\n    none: { mask.text_ratio: 0 }\n    prioritized: { mask.text_ratio: 0.5, mask.text_strategy: prioritized }\n',
    expect: [{ text_mask: 'none' }, { text_mask: 'prioritized' }],
  },
  {
    name: 'seeds multiply every cell',
    yaml: 'name: a\naxes:\n  mask.image_ratio: [0, 0.5]\nseeds: [3, 4]\n',
    expect: [
      { 'mask.image_ratio': '0', seed: '3' },
      { 'mask.image_ratio': '0', seed: '4' },
      { 'mask.image_ratio': '0.5', seed: '3' },
      { 'mask.image_ratio': '0.5', seed: '4' },
    ],
  },
  {
    name: 'exclude drops matching cells, include adds cells',
    yaml:
      'name: a\naxes:\n  mask.image_ratio: [0, 0.5]\n  train.batch_size: [8, 16]\nexclude:\n  - { mask.image_ratio: 0.5, train.batch_size: 16 }\ninclude:\n  - { mask.image_ratio: 0.75, train.batch_size: 32 }\n',
    expect: [
      { 'mask.image_ratio': '0', 'train.batch_size': '8' },
      { 'mask.image_ratio': '0', 'train.batch_size': '16' },
      { 'mask.image_ratio': '0.5', 'train.batch_size': '8' },
      { 'mask.image_ratio': '0.75', 'train.batch_size': '32' },
    ],
  },
  {
    name: 'identical cells collapse: 0.5 and 5e-1 are the same job',
    yaml: 'name: a\naxes:\n  mask.image_ratio: [0.5, 5e-1, 0.50]\n',
    expect: [{ 'mask.image_ratio': '0.5' }],
  },
  {
    name: 'a cell equal to the base config collapses with it',
    yaml: 'name: a\naxes:\n  train.batch_size: [64, 32]\ninclude:\n  - { train.batch_size: 64 }\n',
    expect: [{ 'train.batch_size': '64' }, { 'train.batch_size': '32' }],
  },
  {
    name: 'extends: the child overrides base fields and adds axes',
    yaml: 'name: child\nextends: parent.yaml\nbase:\n  train: { steps: 7 }\naxes:\n  mask.image_ratio: [0, 0.75]\n',
    extra: { 'parent.yaml': 'base:\n  train: { steps: 3, batch_size: 8 }\naxes:\n  model.preset: [tiny]\n' },
    expect: [
      { 'model.preset': 'tiny', 'mask.image_ratio': '0' },
      { 'model.preset': 'tiny', 'mask.image_ratio': '0.75' },
    ],
  },
];

for (const c of cases) {
  test(`grid: ${c.name}`, () => {
    assert.deepEqual(labels(grid(c.yaml, c.extra, c.set)), c.expect);
  });
}

test('grid: each job carries its fully resolved config and a stable hash', () => {
  const jobs = grid('name: a\nbase:\n  train: { steps: 5 }\nzip:\n  - mask.image_ratio: [0, 0.5]\n    train.batch_size: [16, 32]\n');
  assert.equal(jobs[1].config.mask.image_ratio, 0.5);
  assert.equal(jobs[1].config.train.batch_size, 32);
  assert.equal(jobs[1].config.train.steps, 5);
  assert.equal(jobs[1].config.model.image.width, 128, 'defaults filled in');
  assert.equal(jobs[1].hash, configHash(jobs[1].config));
  assert.notEqual(jobs[0].hash, jobs[1].hash);
});

test('grid: extends child values win and --set overrides the base of every cell', () => {
  const jobs = grid(
    'name: child\nextends: parent.yaml\nbase:\n  train: { steps: 7 }\n',
    { 'parent.yaml': 'base:\n  train: { steps: 3, batch_size: 8 }\n' },
    ['train.batch_size=4', 'mask.image_ratio=5e-1'],
  );
  assert.equal(jobs[0].config.train.steps, 7);
  assert.equal(jobs[0].config.train.batch_size, 4);
  assert.equal(jobs[0].config.mask.image_ratio, 0.5);
});

test('grid: an empty variant {} is the base config under its own label', () => {
  const jobs = grid('name: a\nbase:\n  train: { samples: 640 }\naxes:\n  budget:\n    samples: {}\n    time: { train.samples: null, train.time_budget_s: 5 }\n');
  assert.deepEqual(labels(jobs), [{ budget: 'samples' }, { budget: 'time' }]);
  assert.equal(jobs[0].config.train.samples, 640);
  assert.equal(jobs[0].hash, grid('name: a\nbase:\n  train: { samples: 640 }\n')[0].hash, 'the same job as the base alone');
  assert.equal(jobs[1].config.train.samples, null);
});

test('hash: independent of key order and of how numbers are written', () => {
  assert.equal(configHash({ a: 0.5, b: { c: 1, d: [1, 2] } }), configHash({ b: { d: [1, 2], c: 1e0 }, a: 5e-1 }));
  assert.notEqual(configHash({ a: 0.5 }), configHash({ a: 0.25 }));
  assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
});

test('grid: the same spec written in two key orders gives the same hashes', () => {
  const a = grid('name: a\nbase:\n  train: { steps: 5, batch_size: 8 }\n  mask: { image_ratio: 0.5 }\n');
  const b = grid('name: a\nbase:\n  mask: { image_ratio: 5e-1 }\n  train: { batch_size: 8, steps: 5 }\n');
  assert.equal(a[0].hash, b[0].hash);
});

test('grid: cross-field problems of a cell point at the axis value that causes them', () => {
  const dir = writeFiles({ 'spec.yaml': 'name: a\nbase:\n  data: { train_size: 100 }\naxes:\n  train.batch_size: [50, 200]\n' });
  const spec = loadSpec(join(dir, 'spec.yaml'));
  assert.throws(
    () => expandGrid(spec, (config) => (config.train.batch_size > config.data.train_size ? [`train.batch_size: ${config.train.batch_size} is bigger than data.train_size`] : [])),
    (err: Error) => /spec\.yaml:5:26: cell \{train\.batch_size=200\}: train\.batch_size: 200 is bigger/.test(err.message),
  );
});

test('a job is identified by what can change its results: resume-state settings are left out of the hash', () => {
  const base = resolveConfig({ train: { steps: 40 } });
  const hash = configHash(base);
  assert.equal(configHash(deepMerge(base, { train: { checkpoint_every: 7, checkpoint_every_s: null } })), hash);
  assert.notEqual(configHash(deepMerge(base, { train: { steps: 41 } })), hash);
  assert.equal(base.train.checkpoint_every_s, 60, 'the config itself keeps the field');
});
