/**
 * Evaluation on the eval split: zero-shot classification with prompt templates (per class: mean of the normalised
 * template embeddings, renormalised; top-1 and top-k with k = min(5, classes)) and image-text retrieval recall@1/5/10
 * both ways with each example's own caption as its match. A rank counts the candidates scoring strictly higher than
 * the match. Inference: 'unmasked' (all patches), 'masked' (the training ratio), 'ensemble' (mean of the embeddings of
 * ceil(1 / (1 - r)) complementary masked views that together cover every patch, renormalised).
 */
import * as tf from '@tensorflow/tfjs';
import type { InferenceMode, TrainConfig } from './config.js';
import type { Dataset, Example } from './data/dataset.js';
import { encodePrompts } from './data/make-tokenizer.js';
import type { Tokenizer } from './data/tokenizer.js';
import type { Engine } from './engine/engine.js';
import { concatIds, fullPositions } from './flip-model.js';
import { permutation } from './random.js';
import { allIndices, keepCount, sampleKeepIndices } from './vit.js';

/** Image views for one batch: each view is [B*K_v] patch indices. */
export function inferenceViews(mode: InferenceMode, batch: number, numPatches: number, ratio: number, rng: () => number): Int32Array[] {
  if (mode === 'unmasked' || ratio === 0) return [allIndices(batch, numPatches)];
  const k = keepCount(numPatches, ratio);
  if (mode === 'masked') return [sampleKeepIndices(batch, numPatches, k, rng)];
  const views = Math.ceil(numPatches / k);
  const perms = Array.from({ length: batch }, () => permutation(numPatches, rng));
  const out: Int32Array[] = [];
  for (let v = 0; v < views; v++) {
    const size = Math.min(k, numPatches - v * k); // the last view may be shorter
    const idx = new Int32Array(batch * size);
    for (let b = 0; b < batch; b++) for (let j = 0; j < size; j++) idx[b * size + j] = perms[b][v * k + j];
    out.push(idx);
  }
  return out;
}

/** What evaluation needs of an engine: its model (shapes, tokens) and its forward pass. */
export type Encoder = Pick<Engine, 'model' | 'embedImages' | 'embedTexts'>;

/** [N, E] unit image embeddings, computed in batches of eval.batch_size. */
export async function embedImages(encoder: Encoder, images: Float32Array[], config: TrainConfig, rng: () => number): Promise<Float32Array> {
  const e = config.model.embed_dim;
  const out = new Float32Array(images.length * e);
  const bs = config.eval.batch_size;
  const vit = encoder.model.image;
  for (let start = 0; start < images.length; start += bs) {
    const chunk = images.slice(start, start + bs);
    const views = inferenceViews(config.eval.inference, chunk.length, vit.numPatches, config.mask.image_ratio, rng);
    const emb = tf.tidy(() => {
      let sum: tf.Tensor2D | null = null;
      for (const keep of views) {
        const z = encoder.embedImages(vit.tokens(chunk, keep), chunk.length);
        sum = sum ? tf.add(sum, z) : z;
      }
      return views.length > 1 ? tf.div(sum!, tf.norm(sum!, 'euclidean', -1, true)) : sum!;
    });
    out.set(await emb.data(), start * e);
    emb.dispose();
  }
  return out;
}

/** [N, E] unit text embeddings of [N] id arrays of the context length. */
export async function embedTexts(encoder: Encoder, ids: Int32Array[], config: TrainConfig): Promise<Float32Array> {
  const e = config.model.embed_dim;
  const out = new Float32Array(ids.length * e);
  const bs = config.eval.batch_size;
  for (let start = 0; start < ids.length; start += bs) {
    const rows = ids.slice(start, start + bs);
    const flat = concatIds(rows);
    const emb = tf.tidy(() => encoder.embedTexts(flat, fullPositions(rows.length, rows[0].length), rows.length));
    out.set(await emb.data(), start * e);
    emb.dispose();
  }
  return out;
}

/**
 * For each row i of a [N, E] against all rows of b [N, E]: how many rows of b score strictly above b_i (the match).
 * Computed in chunks of rows on the backend, so memory stays O(chunk x N).
 */
async function matchRanks(a: Float32Array, b: Float32Array, e: number): Promise<Int32Array> {
  const n = a.length / e;
  const ranks = new Int32Array(n);
  const bT = tf.tidy(() => tf.transpose(tf.tensor2d(b, [n, e])));
  const chunk = 512;
  for (let s = 0; s < n; s += chunk) {
    const rows = Math.min(chunk, n - s);
    const sim = tf.tidy(() => tf.matMul(tf.tensor2d(a.subarray(s * e, (s + rows) * e), [rows, e]), bT));
    const values = await sim.data();
    sim.dispose();
    for (let r = 0; r < rows; r++) ranks[s + r] = rankOf(values, n, r, s + r);
  }
  bT.dispose();
  return ranks;
}

/** a [N, E], b [M, E] -> [N, M] dot products (M small: the zero-shot classes). */
async function similarities(a: Float32Array, b: Float32Array, e: number): Promise<Float32Array> {
  const sim = tf.tidy(() => tf.matMul(tf.tensor2d(a, [a.length / e, e]), tf.transpose(tf.tensor2d(b, [b.length / e, e]))));
  const out = (await sim.data()) as Float32Array;
  sim.dispose();
  return out;
}

/** Number of entries of row r of [N, M] scoring strictly above column c. */
function rankOf(sim: ArrayLike<number>, m: number, r: number, c: number): number {
  const target = sim[r * m + c];
  let rank = 0;
  for (let j = 0; j < m; j++) if (sim[r * m + j] > target) rank++;
  return rank;
}

/** Recall@k for each k from the ranks of the matches. */
export function recallFromRanks(ranks: Int32Array, ks: number[]): number[] {
  return ks.map((k) => ranks.reduce((acc, r) => acc + (r < k ? 1 : 0), 0) / ranks.length);
}

/** Recall@k for each k over a square [N, N] similarity matrix (row i's match is column i). */
export function recallAtK(sim: Float32Array, n: number, ks: number[]): number[] {
  return recallFromRanks(Int32Array.from({ length: n }, (_, i) => rankOf(sim, n, i, i)), ks);
}

export interface EvalInputs {
  engine: Encoder;
  dataset: Dataset;
  tokenizer: Tokenizer;
  config: TrainConfig;
  /** Masking noise for 'masked' / 'ensemble' inference. */
  rng: () => number;
}

export async function evaluate({ engine, dataset, tokenizer, config, rng }: EvalInputs): Promise<Record<string, number>> {
  const n = dataset.eval.size;
  const ctx = config.model.text.context_length;
  const e = config.model.embed_dim;
  const examples: Example[] = [];
  for (let i = 0; i < n; i++) examples.push(dataset.eval.get(i));
  const imgEmb = await embedImages(engine, examples.map((x) => x.image), config, rng); // [N, E]
  const txtEmb = await embedTexts(engine, examples.map((x) => tokenizer.encode(x.caption, ctx)), config); // [N, E]

  // Zero-shot classifier: [C, E].
  const listed = config.eval.templates === 'dataset' ? dataset.templates : config.eval.templates;
  const templates = listed.length > 0 ? listed : ['{}']; // a dataset without templates: the bare class name
  const classes = dataset.classNames.length;
  const prompts = encodePrompts(tokenizer, dataset.classNames, templates, ctx); // [C][Tm]
  const promptEmb = await embedTexts(engine, prompts.flat(), config); // [C*Tm, E]
  const classEmb = new Float32Array(classes * e);
  for (let c = 0; c < classes; c++) {
    let norm = 0;
    for (let j = 0; j < e; j++) {
      let s = 0;
      for (let t = 0; t < templates.length; t++) s += promptEmb[(c * templates.length + t) * e + j];
      classEmb[c * e + j] = s;
      norm += s * s;
    }
    const inv = 1 / Math.sqrt(norm + 1e-12);
    for (let j = 0; j < e; j++) classEmb[c * e + j] *= inv;
  }

  const metrics: Record<string, number> = {};
  if (classes > 0) {
    const sim = await similarities(imgEmb, classEmb, e); // [N, C]
    const k5 = Math.min(5, classes);
    let top1 = 0;
    let top5 = 0;
    let labelled = 0;
    examples.forEach((x, i) => {
      if (x.label < 0) return;
      labelled++;
      const r = rankOf(sim, classes, i, x.label);
      if (r < 1) top1++;
      if (r < k5) top5++;
    });
    if (labelled > 0) {
      metrics.zero_shot_top1 = top1 / labelled;
      metrics.zero_shot_top5 = top5 / labelled;
    }
  }
  const [i1, i5, i10] = recallFromRanks(await matchRanks(imgEmb, txtEmb, e), [1, 5, 10]);
  const [t1, t5, t10] = recallFromRanks(await matchRanks(txtEmb, imgEmb, e), [1, 5, 10]);
  Object.assign(metrics, {
    retrieval_i2t_r1: i1,
    retrieval_i2t_r5: i5,
    retrieval_i2t_r10: i10,
    retrieval_t2i_r1: t1,
    retrieval_t2i_r5: t5,
    retrieval_t2i_r10: t10,
  });
  return metrics;
}
