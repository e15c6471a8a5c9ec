import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { FASHION_CLASS_NAMES, FASHION_MNIST_DEFAULT_PATH } from '../models/data/fashion-mnist.js';
import { resizeGreyToRgb } from '../models/data/image-decode.js';
import { ConfigError } from '../models/events.js';

const installed = existsSync(`${FASHION_MNIST_DEFAULT_PATH}/train-images-idx3-ubyte.gz`);
const skip = installed ? false : `Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)`;

function config(data: Partial<TrainConfig['data']>, seed = 0): TrainConfig {
  return deepMerge(DEFAULTS, { seed, data: { dataset: 'fashion-mnist', ...data } });
}

test('fashion-mnist: loads, 10 classes, captions name the class, images in [0, 1]', { skip }, async () => {
  const ds = await loadDataset(config({ train_size: 500, eval_size: 100, image_size: 16 }));
  assert.deepEqual(ds.classNames, FASHION_CLASS_NAMES);
  assert.equal(ds.train.size, 500);
  assert.equal(ds.eval.size, 100);
  const labels = new Set<number>();
  for (let i = 0; i < ds.train.size; i++) {
    const ex = ds.train.get(i);
    labels.add(ex.label);
    assert.equal(ex.image.length, 16 * 16 * 3);
    assert.ok(ex.image.every((v) => v >= 0 && v <= 1));
    assert.equal(ex.image[0], ex.image[1], 'grey: the same value in every channel');
    assert.ok(ex.caption.length > 0);
  }
  assert.equal(labels.size, 10);
  const named = Array.from({ length: 100 }, (_, i) => ds.eval.get(i)).filter((ex) =>
    ex.caption.includes(FASHION_CLASS_NAMES[ex.label].toLowerCase()),
  ).length;
  assert.ok(named > 60, `most captions use the class name (${named}/100)`);
});

test('fashion-mnist: deterministic for a seed, another order for another seed', { skip }, async () => {
  const a = await loadDataset(config({ train_size: 50, eval_size: 10, image_size: 8 }, 1));
  const b = await loadDataset(config({ train_size: 50, eval_size: 10, image_size: 8 }, 1));
  const c = await loadDataset(config({ train_size: 50, eval_size: 10, image_size: 8 }, 2));
  for (let i = 0; i < 10; i++) assert.deepEqual(a.train.get(i), b.train.get(i));
  assert.notDeepEqual(
    Array.from({ length: 10 }, (_, i) => a.train.get(i).image[40]),
    Array.from({ length: 10 }, (_, i) => c.train.get(i).image[40]),
  );
  await assert.rejects(loadDataset(config({ train_size: 60_001 })), (e: unknown) => e instanceof ConfigError && e.key === 'data.train_size');
});

test('fashion-mnist: a wrong path gives the install hint', async () => {
  await assert.rejects(loadDataset(config({ path: '/no/such/fashion' })), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'data.dataset');
    assert.match(e.message, /Fashion-MNIST not found at \/no\/such\/fashion/);
    assert.match(e.message, /apt-get install dataset-fashion-mnist/);
    return true;
  });
});

test('resizeGreyToRgb: area average when shrinking, exact at the same size', () => {
  const src = new Uint8Array([0, 255, 255, 0, 0, 255, 255, 0, 0, 0, 0, 0, 255, 255, 255, 255]); // 4 x 4
  const half = resizeGreyToRgb(src, 4, 4, 2);
  assert.deepEqual(Array.from(half.filter((_, i) => i % 3 === 0)), [0.5, 0.5, 0.5, 0.5]);
  const same = resizeGreyToRgb(src, 4, 4, 4);
  assert.deepEqual(Array.from(same.filter((_, i) => i % 3 === 0)), Array.from(src, (v) => v / 255));
  const up = resizeGreyToRgb(src, 4, 4, 7);
  assert.ok(up.every((v) => v >= 0 && v <= 1));
});
