import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { SHAPES_CLASS_NAMES, SHAPES_TEMPLATES } from '../models/data/shapes.js';
import { ConfigError } from '../models/events.js';
import { splitWords } from '../models/data/word-tokenizer.js';

function config(data: Partial<TrainConfig['data']>, seed = 0): TrainConfig {
  return deepMerge(DEFAULTS, { seed, data });
}

test('shapes: sizes, image shape and value range', async () => {
  const ds = await loadDataset(config({ dataset: 'shapes', train_size: 300, eval_size: 50, image_size: 16 }));
  assert.equal(ds.name, 'shapes');
  assert.equal(ds.imageSize, 16);
  assert.equal(ds.train.size, 300);
  assert.equal(ds.eval.size, 50);
  assert.ok(ds.classNames.length >= 20 && ds.classNames.length <= 40, `classes: ${ds.classNames.length}`);
  assert.ok(ds.templates.length >= 3 && ds.templates.every((t) => t.includes('{}')));
  for (const split of [ds.train, ds.eval]) {
    for (let i = 0; i < split.size; i += 7) {
      const ex = split.get(i);
      assert.equal(ex.image.length, 16 * 16 * 3);
      let min = Infinity;
      let max = -Infinity;
      for (const v of ex.image) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      assert.ok(min >= 0 && max <= 1, `range [${min}, ${max}]`);
      assert.ok(max - min > 0.3, 'the shape stands out from the background');
    }
  }
  assert.throws(() => ds.train.get(300), RangeError);
  assert.throws(() => ds.train.get(-1), RangeError);
});

test('shapes: the caption names the class colour and shape', async () => {
  const ds = await loadDataset(config({ dataset: 'shapes', train_size: 500, eval_size: 10, image_size: 16 }));
  const seen = new Set<number>();
  const captions = new Set<string>();
  for (let i = 0; i < ds.train.size; i++) {
    const ex = ds.train.get(i);
    assert.ok(ex.label >= 0 && ex.label < ds.classNames.length);
    seen.add(ex.label);
    captions.add(ex.caption);
    const words = new Set(splitWords(ex.caption));
    for (const w of splitWords(ds.classNames[ex.label])) {
      assert.ok(words.has(w), `"${ex.caption}" lacks "${w}" of class "${ds.classNames[ex.label]}"`);
    }
  }
  assert.equal(seen.size, ds.classNames.length, 'every class appears in 500 examples');
  assert.ok(captions.size > 200, `varied captions: ${captions.size} distinct of 500`);
  assert.deepEqual(ds.classNames, SHAPES_CLASS_NAMES);
  assert.deepEqual(ds.templates, SHAPES_TEMPLATES);
});

test('shapes: deterministic per (seed, split, index); seeds and splits differ', async () => {
  const a = await loadDataset(config({ dataset: 'shapes', train_size: 100, eval_size: 20, image_size: 32 }, 7));
  const b = await loadDataset(config({ dataset: 'shapes', train_size: 5000, eval_size: 20, image_size: 32 }, 7));
  const c = await loadDataset(config({ dataset: 'shapes', train_size: 100, eval_size: 20, image_size: 32 }, 8));
  let sameAsOtherSeed = 0;
  for (let i = 0; i < 20; i++) {
    const x = a.train.get(i);
    assert.deepEqual(x, a.train.get(i), 'same call twice');
    assert.deepEqual(x, b.train.get(i), 'same example whatever train_size');
    if (x.caption === c.train.get(i).caption && x.label === c.train.get(i).label) sameAsOtherSeed++;
    assert.notDeepEqual(x.image, a.eval.get(i).image, 'train and eval are different streams');
  }
  assert.ok(sameAsOtherSeed < 5, `seed 8 should give other examples (${sameAsOtherSeed}/20 equal)`);
});

test('shapes: large sizes are lazy', async () => {
  const t0 = Date.now();
  const ds = await loadDataset(config({ dataset: 'shapes', train_size: 1_000_000, eval_size: 1000, image_size: 32 }));
  assert.equal(ds.train.size, 1_000_000);
  assert.equal(ds.train.get(999_999).image.length, 32 * 32 * 3);
  assert.ok(Date.now() - t0 < 1000);
});

test('shapes: bad sizes and unknown dataset are ConfigErrors', async () => {
  await assert.rejects(loadDataset(config({ dataset: 'shapes', train_size: 0 })), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'data.train_size';
  });
  await assert.rejects(loadDataset(config({ dataset: 'shapes', image_size: 2 })), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'data.image_size';
  });
  await assert.rejects(loadDataset(config({ dataset: 'cifar' as never })), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'data.dataset');
    assert.equal(e.message, 'data.dataset: unknown dataset "cifar"; known: shapes, glyphs, glyphs-faint, glyphs-24, emoji, fashion-mnist, folder, webdataset');
    return true;
  });
});
