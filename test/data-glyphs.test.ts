import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { GLYPH_NAMES, glyphNames, glyphsExample, type GlyphsVariant } from '../models/data/glyphs.js';
import { COLOUR_NAMES } from '../models/data/shapes.js';
import { splitWords } from '../models/data/word-tokenizer.js';
import { cachedExamples } from '../models/data/example-cache.js';

function config(data: Partial<TrainConfig['data']>, seed = 0): TrainConfig {
  return deepMerge(DEFAULTS, { seed, data });
}

test('glyphs: the class is the figure alone; the caption names it; colour is drawn independently of it', async () => {
  const ds = await loadDataset(config({ dataset: 'glyphs', train_size: 2400, eval_size: 10, image_size: 16 }));
  assert.equal(ds.name, 'glyphs');
  assert.deepEqual(ds.classNames, GLYPH_NAMES);
  assert.equal(ds.classNames.length, 12);
  const colourByClass = ds.classNames.map(() => new Map<string, number>());
  for (let i = 0; i < ds.train.size; i++) {
    const ex = ds.train.get(i);
    const words = splitWords(ex.caption);
    assert.ok(words.includes(ds.classNames[ex.label]), `"${ex.caption}" lacks its figure "${ds.classNames[ex.label]}"`);
    const others = ds.classNames.filter((n, c) => c !== ex.label && words.includes(n));
    assert.deepEqual(others, [], `"${ex.caption}" names another figure`);
    assert.ok(!/left|right|top|bottom|center|middle/.test(ex.caption), `"${ex.caption}" names a position`);
    const colour = COLOUR_NAMES.find((c) => words.includes(c));
    if (colour) colourByClass[ex.label].set(colour, (colourByClass[ex.label].get(colour) ?? 0) + 1);
  }
  // ~200 examples per figure, ~5/6 of captions name the colour: every colour shows up with every figure.
  for (const [c, counts] of colourByClass.entries()) {
    assert.equal(counts.size, COLOUR_NAMES.length, `${ds.classNames[c]} seen in colours ${[...counts.keys()].join(', ')}`);
  }
});

for (const variant of ['glyphs', 'glyphs-24'] as GlyphsVariant[]) {
  test(`${variant}: every figure is drawn, as a figure on the background (not its inverse)`, () => {
    const names = glyphNames(variant);
    // The foreground of an example: pixels much brighter in its colour than the dark background can be.
    const masks = new Map<number, Uint8Array[]>();
    for (let i = 0; masks.size < names.length || [...masks.values()].some((m) => m.length < 3); i++) {
      assert.ok(i < 5000, 'every figure appears');
      const ex = glyphsExample(3, 'train', i, 32, variant);
      const mask = new Uint8Array(32 * 32);
      for (let p = 0; p < mask.length; p++) mask[p] = Math.max(ex.image[3 * p], ex.image[3 * p + 1], ex.image[3 * p + 2]) > 0.5 ? 1 : 0;
      const list = masks.get(ex.label) ?? [];
      list.push(mask);
      masks.set(ex.label, list);
    }
    for (const [label, list] of masks) {
      for (const m of list) {
        const cover = m.reduce((a, v) => a + v, 0) / m.length;
        // A figure inside a radius of 0.22-0.35 of the side covers 2-40% of the image; an inverted inside test covers most of it.
        assert.ok(cover > 0.02 && cover < 0.4, `${names[label]} covers ${(cover * 100).toFixed(1)}% of the image`);
      }
    }
  });
}

test('glyphs-24: the twelve figures of glyphs and twelve more, each named by its caption and no other; its own examples', async () => {
  const ds = await loadDataset(config({ dataset: 'glyphs-24', train_size: 2400, eval_size: 10, image_size: 16 }));
  const plain = await loadDataset(config({ dataset: 'glyphs', train_size: 10, eval_size: 10, image_size: 16 }));
  assert.equal(ds.name, 'glyphs-24');
  assert.equal(new Set(ds.classNames).size, 24);
  assert.deepEqual(ds.classNames.slice(0, 12), GLYPH_NAMES);
  const seen = new Set<number>();
  for (let i = 0; i < ds.train.size; i++) {
    const ex = ds.train.get(i);
    const words = splitWords(ex.caption);
    assert.deepEqual(ds.classNames.filter((n) => words.includes(n)), [ds.classNames[ex.label]], ex.caption);
    seen.add(ex.label);
  }
  assert.equal(seen.size, 24, 'every figure is a class of the training set');
  assert.notDeepEqual(ds.train.get(0).image, plain.train.get(0).image, 'a stream of its own, not glyphs with other labels');
});

test('glyphs: deterministic per (seed, split, index); seeds and splits differ', async () => {
  const a = await loadDataset(config({ dataset: 'glyphs', train_size: 100, eval_size: 20, image_size: 32 }, 7));
  const b = await loadDataset(config({ dataset: 'glyphs', train_size: 5000, eval_size: 20, image_size: 32 }, 7));
  const c = await loadDataset(config({ dataset: 'glyphs', train_size: 100, eval_size: 20, image_size: 32 }, 8));
  let sameAsOtherSeed = 0;
  for (let i = 0; i < 20; i++) {
    const x = a.train.get(i);
    assert.deepEqual(x, b.train.get(i), 'same example whatever train_size');
    if (x.caption === c.train.get(i).caption && x.label === c.train.get(i).label) sameAsOtherSeed++;
    assert.notDeepEqual(x.image, a.eval.get(i).image, 'train and eval are different streams');
  }
  assert.ok(sameAsOtherSeed < 5, `seed 8 should give other examples (${sameAsOtherSeed}/20 equal)`);
  assert.throws(() => a.train.get(100), RangeError);
});

test("glyphs-faint: about one figure in five is drawn too faint to see, the rest as in 'glyphs'; labels and captions as in 'glyphs'", async () => {
  // A figure at opacity under 0.15 over a background of at most ~0.37 never reaches 0.5 in any channel; a figure at
  // full opacity always does (the test above). 'glyphs' itself has no faint figure.
  const invisible = (image: Float32Array) => !image.some((v) => v > 0.5);
  const n = 600;
  const faint = await loadDataset(config({ dataset: 'glyphs-faint', train_size: n, eval_size: 10, image_size: 32 }));
  const plain = await loadDataset(config({ dataset: 'glyphs', train_size: n, eval_size: 10, image_size: 32 }));
  assert.equal(faint.name, 'glyphs-faint');
  assert.deepEqual(faint.classNames, plain.classNames);
  let hidden = 0;
  for (let i = 0; i < n; i++) {
    const ex = faint.train.get(i);
    if (invisible(ex.image)) hidden++;
    assert.ok(splitWords(ex.caption).includes(faint.classNames[ex.label]), ex.caption);
    assert.ok(!invisible(plain.train.get(i).image), `glyphs example ${i} has no visible figure`);
  }
  assert.ok(hidden / n > 0.14 && hidden / n < 0.26, `${hidden} of ${n} faint`);
});

test('generated splits keep each example once made, when the split fits the cache budget; a larger one is made on demand', async () => {
  const small = await loadDataset(config({ dataset: 'glyphs-24', train_size: 64, eval_size: 16, image_size: 32 }));
  const first = small.train.get(5);
  assert.equal(small.train.get(5), first, 'the same object: made once');
  assert.deepEqual(first, glyphsExample(0, 'train', 5, 32, 'glyphs-24'), 'and equal to the example made afresh');
  assert.equal(small.eval.get(3), small.eval.get(3));
  // A million 32 px images (12 GB) are far over the budget: each get makes the example again.
  const large = await loadDataset(config({ dataset: 'shapes', train_size: 1_000_000, eval_size: 10, image_size: 32 }));
  const a = large.train.get(999_999);
  const b = large.train.get(999_999);
  assert.notEqual(a, b);
  assert.deepEqual(a, b);
});

test('the cache budget decides: a split one byte over it is not kept', () => {
  let made = 0;
  const make = (i: number) => {
    made++;
    return { image: new Float32Array(2 * 2 * 3), caption: String(i), label: 0 };
  };
  const fits = cachedExamples(make, 10, 2, 10 * 2 * 2 * 3 * 4);
  fits(1);
  fits(1);
  assert.equal(made, 1);
  const over = cachedExamples(make, 10, 2, 10 * 2 * 2 * 3 * 4 - 1);
  over(1);
  over(1);
  assert.equal(made, 3);
});
