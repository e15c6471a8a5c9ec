/** Evaluation: recall@k and zero-shot on hand-made embeddings' logic, and the three inference modes end to end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend } from '../models/backend.js';
import { resolveConfig, type InferenceMode } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { makeTokenizer } from '../models/data/make-tokenizer.js';
import { evaluate, recallAtK } from '../models/evaluate.js';
import { buildModel, createEngine } from '../models/engine/select.js';
import { makeRng } from '../models/random.js';

test('recallAtK counts the candidates scoring strictly above the match', () => {
  // 3 x 3 similarities: row 0's match is best, row 1's is second, row 2's is third.
  const sim = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.5, 0.1, 0.7, 0.6, 0.3]);
  assert.deepEqual(recallAtK(sim, 3, [1, 2, 3]), [1 / 3, 2 / 3, 1]);
});

test('evaluate: unmasked, masked and ensemble inference give valid metrics, deterministic per seed', async () => {
  await selectBackend('wasm');
  const base = resolveConfig({
    model: { preset: 'tiny' },
    data: { dataset: 'shapes', train_size: 64, eval_size: 40, image_size: 16 },
    mask: { image_ratio: 0.75 },
    eval: { batch_size: 16 },
  });
  const dataset = await loadDataset(base);
  const captions = Array.from({ length: dataset.train.size }, (_, i) => dataset.train.get(i).caption);
  const tokenizer = await makeTokenizer(base.model.text, captions);
  const model = buildModel(base, tokenizer.vocabSize, tokenizer.padId);
  const results: Record<string, Record<string, number>> = {};
  try {
    for (const inference of ['unmasked', 'masked', 'ensemble'] as InferenceMode[]) {
      const config = { ...base, eval: { ...base.eval, inference } };
      const r = await evaluate({ engine: createEngine(model), dataset, tokenizer, config, rng: makeRng(1) });
      for (const key of ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_i2t_r5', 'retrieval_i2t_r10', 'retrieval_t2i_r1', 'retrieval_t2i_r5', 'retrieval_t2i_r10']) {
        assert.ok(r[key] >= 0 && r[key] <= 1, `${inference} ${key}: ${r[key]}`);
      }
      assert.ok(r.zero_shot_top5 >= r.zero_shot_top1 && r.retrieval_i2t_r10 >= r.retrieval_i2t_r5);
      results[inference] = r;
      const again = await evaluate({ engine: createEngine(model), dataset, tokenizer, config, rng: makeRng(1) });
      assert.deepEqual(again, r, `${inference}: same rng seed, same metrics`);
    }
  } finally {
    model.dispose();
  }
});
