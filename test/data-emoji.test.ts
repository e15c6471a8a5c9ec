import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { emojiItems, EMOJI_CLASS_NAMES, splitByGroup } from '../models/data/emoji.js';
import { ConfigError } from '../models/events.js';

function config(data: Partial<TrainConfig['data']>, seed = 0): TrainConfig {
  return deepMerge(DEFAULTS, { seed, data: { dataset: 'emoji', ...data } });
}

test('emoji: 3,786 images in 1,911 groups, 10 categories', () => {
  const { items } = emojiItems();
  assert.equal(items.length, 3786);
  assert.equal(new Set(items.map((i) => i.group)).size, 1911);
  assert.equal(EMOJI_CLASS_NAMES.length, 10);
  assert.equal(new Set(items.map((i) => i.category)).size, 10);
});

test('emoji: real captions, labels, images in [0, 1] composited on white', async () => {
  const ds = await loadDataset(config({ train_size: 200, eval_size: 50, image_size: 16 }));
  assert.equal(ds.train.size, 200);
  assert.equal(ds.eval.size, 50);
  assert.deepEqual(ds.classNames, EMOJI_CLASS_NAMES);
  const captions = new Set<string>();
  let corners = 0;
  for (let i = 0; i < ds.train.size; i++) {
    const ex = ds.train.get(i);
    captions.add(ex.caption);
    assert.ok(ex.label >= 0 && ex.label < 10);
    assert.equal(ex.image.length, 16 * 16 * 3);
    assert.ok(ex.image.every((v) => v >= 0 && v <= 1));
    corners += ex.image[0];
    assert.ok(ex.image.some((v) => v < 0.9), 'something is drawn');
    assert.match(ex.caption, /[a-z]{3,}/);
  }
  assert.ok(corners / ds.train.size > 0.95, `transparent corners are composited on white (mean red ${corners / ds.train.size})`);
  assert.ok(captions.size > 180, `${captions.size} distinct captions`);
});

test('emoji: deterministic, seed-dependent, disjoint by emoji group', async () => {
  const a = await loadDataset(config({ train_size: 300, eval_size: 100, image_size: 8 }, 1));
  const b = await loadDataset(config({ train_size: 300, eval_size: 100, image_size: 8 }, 1));
  const c = await loadDataset(config({ train_size: 300, eval_size: 100, image_size: 8 }, 2));
  for (let i = 0; i < 20; i++) assert.deepEqual(a.train.get(i), b.train.get(i));
  const capsA = Array.from({ length: 20 }, (_, i) => a.train.get(i).caption);
  const capsC = Array.from({ length: 20 }, (_, i) => c.train.get(i).caption);
  assert.notDeepEqual(capsA, capsC);
});

test('emoji: no emoji group is in both splits; eval stays fixed when train_size grows', () => {
  const { items } = emojiItems();
  const small = splitByGroup(items, 500, 300, 3);
  const big = splitByGroup(items, 3000, 300, 3);
  assert.equal(small.train.length, 500);
  assert.equal(small.eval.length, 300);
  assert.deepEqual(small.eval, big.eval);
  const bigTrain = new Set(big.train);
  assert.ok(small.train.every((i) => bigTrain.has(i)), 'the small train set is inside the big one');
  const neighbours = big.train.slice(1).filter((i, k) => items[i].group === items[big.train[k]].group).length;
  assert.ok(neighbours < 30, `variants of one emoji are spread out (${neighbours} same-group neighbours)`);
  const evalGroups = new Set(big.eval.map((i) => items[i].group));
  assert.ok(big.train.every((i) => !evalGroups.has(items[i].group)));
  assert.equal(new Set([...big.train, ...big.eval]).size, 3300);
});

test('emoji: too many examples asked is a ConfigError naming what is available', async () => {
  await assert.rejects(loadDataset(config({ train_size: 3700, eval_size: 200 })), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'data.train_size');
    assert.match(e.message, /3786 images/);
    return true;
  });
});
