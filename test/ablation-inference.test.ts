/** FLIP Table 1d, inference modes, observed through the image views evaluate() actually encodes: 'unmasked' sees
 * every patch once, 'masked' one view at the training ratio, 'ensemble' disjoint views that together cover all
 * patches; the text side is the same in every mode. */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from '../models/backend.js';
import { resolveConfig, type InferenceMode, type TrainConfig } from '../models/config.js';
import type { Dataset } from '../models/data/dataset.js';
import { loadDataset } from '../models/data/load.js';
import { makeTokenizer } from '../models/data/make-tokenizer.js';
import type { Tokenizer } from '../models/data/tokenizer.js';
import { evaluate } from '../models/evaluate.js';
import type { FlipModel } from '../models/flip-model.js';
import { buildModel } from '../models/engine/select.js';
import { makeRng } from '../models/random.js';
import { keepCount, type VitTokens } from '../models/vit.js';

const base = resolveConfig({
  model: { preset: 'tiny' },
  data: { dataset: 'shapes', train_size: 64, eval_size: 12, image_size: 16 }, // 4 x 4 = 16 patches
  eval: { batch_size: 12 },
});
let dataset: Dataset;
let tokenizer: Tokenizer;
let model: FlipModel;

before(async () => {
  await selectBackend('wasm');
  dataset = await loadDataset(base);
  tokenizer = await makeTokenizer(base.model.text, Array.from({ length: dataset.train.size }, (_, i) => dataset.train.get(i).caption));
  model = buildModel(base, tokenizer.vocabSize, tokenizer.padId);
});
after(() => model.dispose());

/** Runs evaluate() recording, per embedImages call, the patch indices of each sample, and the token ids of each
 * embedTexts call. */
async function observe(config: TrainConfig): Promise<{ views: number[][][]; texts: number[][] }> {
  const views: number[][][] = [];
  const texts: number[][] = [];
  // An encoder that records what evaluate() asks of it and answers with the model's forward pass.
  const encoder = {
    model,
    embedImages: (t: VitTokens, size: number) => {
      const k = t.keep.length / size;
      views.push(Array.from({ length: size }, (_, b) => Array.from(t.keep.subarray(b * k, (b + 1) * k))));
      return model.embedImages(t, size);
    },
    embedTexts: (ids: Int32Array, positions: Int32Array, size: number) => {
      texts.push(Array.from(ids));
      return model.embedTexts(ids, positions, size);
    },
  };
  await evaluate({ engine: encoder, dataset, tokenizer, config, rng: makeRng(2) });
  return { views, texts };
}

const withMode = (inference: InferenceMode, ratio: number): TrainConfig => ({ ...base, mask: { ...base.mask, image_ratio: ratio }, eval: { ...base.eval, inference } });
const all = Array.from({ length: 16 }, (_, i) => i);

test('unmasked inference encodes every patch once, whatever the training ratio', async () => {
  const { views } = await observe(withMode('unmasked', 0.75));
  assert.equal(views.length, 1);
  for (const sample of views[0]) assert.deepEqual(sample, all);
});

test('masked inference encodes one view at the training ratio: K = floor(L (1 - r)) distinct patches', async () => {
  for (const ratio of [0.5, 0.75]) {
    const { views } = await observe(withMode('masked', ratio));
    assert.equal(views.length, 1, `ratio ${ratio}`);
    for (const sample of views[0]) {
      assert.equal(sample.length, keepCount(16, ratio), `ratio ${ratio}: ${sample}`);
      assert.equal(new Set(sample).size, sample.length);
    }
  }
});

test('ensemble views are disjoint, each the masked size, and together cover every patch of every sample', async () => {
  for (const [ratio, sizes] of [[0.75, [4, 4, 4, 4]], [0.5, [8, 8]], [0.7, [4, 4, 4, 4]]] as const) {
    const { views } = await observe(withMode('ensemble', ratio));
    assert.deepEqual(views.map((v) => v[0].length), sizes, `ratio ${ratio}`);
    for (let b = 0; b < 12; b++) {
      const seen = views.flatMap((v) => v[b]);
      assert.deepEqual([...seen].sort((x, y) => x - y), all, `ratio ${ratio} sample ${b}: ${seen}`);
    }
  }
});

test('the inference mode changes only the image views: text embeddings see the same ids', async () => {
  const a = await observe(withMode('unmasked', 0.75));
  const b = await observe(withMode('ensemble', 0.75));
  assert.deepEqual(a.texts, b.texts);
});
