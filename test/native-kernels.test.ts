/**
 * The native kernel add-on (native/, models/kernels/native) against the plain wasm implementation: every matMul form
 * the layers use, each fused op's values and gradients, and a whole model's loss and every parameter's gradient on a
 * fixed batch. Without the add-on (no CBLAS at install time) the tests skip, unless FLIP_TEST_REQUIRE_NATIVE=1 (set by
 * .ci/run, which installs libopenblas-dev) makes that a failure.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { DEFAULTS, deepMerge } from '../models/config.js';
import { contrastiveLoss, type FlipModel, fullPositions, l2Normalize, LOGIT_SCALE_MAX, maskText } from '../models/flip-model.js';
import { AutodiffEngine } from '../models/engine/autodiff.js';
import { trainStep } from '../models/engine/engine.js';
import { NativeEngine, nativeEngineUnsupported } from '../models/engine/native.js';
import { buildModel } from '../models/engine/select.js';
import { nativeLayerOps } from '../models/kernels/native/layer-ops.js';
import { plainLayerOps, type LayerOps } from '../models/nn/layer-ops.js';
import { nativeClipHead } from '../models/kernels/native/clip-head.js';
import { loadNativeAddon } from '../models/kernels/native/addon.js';
import { nativeKernelsActive, registerNativeKernels, unregisterNativeKernels } from '../models/kernels/native/register.js';
import { LN_EPS } from '../models/nn/layernorm.js';
import { meanPoolMatrix, selectMatrix } from '../models/nn/constants.js';
import { constMatMul, matMul2d } from '../models/nn/linear.js';
import { makeBlocks } from '../models/nn/block.js';
import { ParamStore } from '../models/nn/params.js';
import { AdamW } from '../models/optimizer.js';
import type { Param } from '../models/nn/params.js';
import { makeRng } from '../models/random.js';
import { buildTrainBatch } from '../models/train.js';
import { TextEncoder } from '../models/text-encoder.js';
import { sampleKeepIndices, VisionTransformer } from '../models/vit.js';

let skipReason: string | undefined;

before(async () => {
  const info = await selectBackend('wasm');
  assert.equal(info.backend, 'wasm');
  const load = loadNativeAddon();
  if (!load.addon) {
    if (process.env.FLIP_TEST_REQUIRE_NATIVE === '1') throw new Error(`FLIP_TEST_REQUIRE_NATIVE=1 but ${load.reason}`);
    skipReason = load.reason;
    return;
  }
  assert.equal(info.native, true, info.device);
  assert.match(info.device, /native kernels: OpenBLAS/);
});

after(() => {
  // Leave the process as the backend set it up, whatever a failed test left behind.
  if (!skipReason) registerNativeKernels();
});

function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = makeRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale), shape);
}

/** Runs f with the native kernels off (the plain wasm implementation), then turns them back on. */
function plain<T>(f: () => T): T {
  unregisterNativeKernels();
  assert.equal(nativeKernelsActive(), false);
  try {
    return f();
  } finally {
    registerNativeKernels();
    assert.equal(nativeKernelsActive(), true);
  }
}

/** max |a - b| / max(1, max |b|): both tensors' values, compared as one relative error. */
async function relativeError(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [await a.data(), await b.data()];
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return diff / scale;
}

/** Values and input gradients of sum(f(xs) * R) for a fixed random R. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor[] {
  return tf.tidy(() => {
    const out = f(...inputs);
    const proj = randn(out.shape, 99);
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), proj)) as tf.Scalar)(inputs);
    return [out, ...grads];
  });
}

/** f on the native layer ops against f on the plain layer ops with the native kernels unregistered. */
async function assertSameAsPlain(name: string, f: (ops: LayerOps, ...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], tol = 1e-5): Promise<void> {
  const native = valueAndGrads((...xs) => f(nativeLayerOps, ...xs), inputs);
  const reference = plain(() => valueAndGrads((...xs) => f(plainLayerOps, ...xs), inputs));
  for (let i = 0; i < native.length; i++) {
    const err = await relativeError(native[i], reference[i]);
    assert.ok(err < tol, `${name}: ${i === 0 ? 'value' : `gradient of input ${i - 1}`} differs from the plain implementation by ${err}`);
  }
  tf.dispose([...native, ...reference]);
}

test('matMul on OpenBLAS: plain, transposed, batched and broadcast forms match the wasm kernel', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[4, 5, 7], [4, 7, 3], false, false],
    [[4, 7, 5], [4, 3, 7], true, true],
    [[1, 5, 7], [4, 7, 3], false, false],
    [[4, 5, 7], [1, 7, 3], false, false],
    [[2, 3, 5, 7], [2, 3, 7, 6], false, false],
    [[4, 5, 7], [7, 3], false, false],
    [[65, 128], [128, 512], false, false],
    [[1, 300], [300, 64], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    const a = randn(sa, 1);
    const b = randn(sb, 2);
    const native = tf.matMul(a, b, ta, tb);
    const reference = plain(() => tf.matMul(a, b, ta, tb));
    const err = await relativeError(native, reference);
    assert.ok(err < 1e-5, `[${sa}]${ta ? 'T' : ''} x [${sb}]${tb ? 'T' : ''}: error ${err}`);
    tf.dispose([a, b, native, reference]);
  }
  // Inner dimensions that do not match are an error, as with the wasm kernel.
  assert.throws(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 5])), /inner|shape|must match/i);
});

test('the native layer ops: linear, LayerNorm and transformer blocks (with padding keys, short and long sequences): values and gradients match the plain layer ops', async (t) => {
  if (skipReason) return t.skip(skipReason);
  await assertSameAsPlain('linear with bias', (ops, x, w, b) => ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), [randn([37, 24], 3), randn([24, 40], 4), randn([40], 5)]);
  await assertSameAsPlain('linear without bias', (ops, x, w) => ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, null), [randn([37, 24], 6), randn([24, 40], 7)]);
  await assertSameAsPlain('layerNorm', (ops, x, g, b) => ops.layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D), [randn([300, 48], 8, 3), randn([48], 9), randn([48], 10)]);

  const store = new ParamStore(11);
  const batch = 3;
  const tokens = 11;
  const bias = new Float32Array(batch * tokens);
  for (let b = 0; b < batch; b++) for (let i = tokens - b * 3; i < tokens; i++) bias[b * tokens + i] = -1e9; // padded keys
  const keyBias = tf.tensor4d(bias, [batch, 1, 1, tokens]);
  // Head width 32, as in every preset: short sequences take the add-on's own loops, long ones BLAS. The fused sublayer
  // kernels (LayerNorm + attention or MLP + residual in one call each way); width 64 with 301-row MLPs makes the
  // element-wise kernels split across threads and run their 8-wide loops with a tail.
  const blocks = makeBlocks(store, 'blocks', { width: 64, depth: 2, heads: 2, mlp_ratio: 4 });
  const run = (keys: tf.Tensor4D | null, b: number, n: number) => (ops: LayerOps, x: tf.Tensor) => ops.blocks(blocks, x as tf.Tensor2D, b, n, keys);
  await assertSameAsPlain('transformer blocks with padding', run(keyBias, batch, tokens), [randn([batch * tokens, 64], 13)]);
  await assertSameAsPlain('transformer blocks without padding', run(null, batch, tokens), [randn([batch * tokens, 64], 14)]);
  await assertSameAsPlain('transformer blocks over 57 tokens', run(null, 2, 57), [randn([2 * 57, 64], 16)]);
  keyBias.dispose();
  store.dispose();
});

/** A model and one fixed batch (padded captions, optionally text-masked). */
function modelAndBatch(imageRatio: number, size: number, textRatio: number) {
  const config = deepMerge(DEFAULTS, { mask: { image_ratio: imageRatio, text_ratio: textRatio }, train: { batch_size: size } });
  const model = buildModel(config, config.model.text.vocab_size, 7);
  const rng = makeRng(21);
  const s = config.data.image_size;
  const ctx = config.model.text.context_length;
  const examples = Array.from({ length: size }, () => ({ image: Float32Array.from({ length: s * s * 3 }, () => rng()), caption: '', label: 0 }));
  const ids = Array.from({ length: size }, (_, b) => {
    const row = new Int32Array(ctx); // pad 0, start 1, end 2
    row[0] = 1;
    for (let i = 1; i <= 3 + b; i++) row[i] = 3 + Math.floor(rng() * 900);
    row[4 + b] = 2;
    return row;
  });
  return { config, model, batch: buildTrainBatch(config, examples, ids, model, makeRng(5)) };
}

/** The loss and every parameter's gradient of a model on one fixed batch (image mask 0.5 by default, padded captions,
 * optionally text-masked), through tfjs's autodiff on the layer ops of the kernels registered now. */
function modelLossAndGrads(imageRatio = 0.5, size = 6, textRatio = 0): { loss: number; grads: Map<string, tf.Tensor> } {
  const { model, batch } = modelAndBatch(imageRatio, size, textRatio);
  const { value, grads } = tf.variableGrads(() => model.loss(batch), model.store.variables());
  const loss = value.dataSync()[0];
  value.dispose();
  // Variable names end in a unique #id per model; the parameter's name is what two models share.
  const kept = new Map(Object.entries(grads).map(([name, g]) => [name.replace(/#\d+$/, ''), tf.keep(g)]));
  model.dispose();
  return { loss, grads: kept };
}

test('a whole model: the same loss and parameter gradients with and without the native kernels, with 1 or 2 threads', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const addon = loadNativeAddon().addon!;
  const threads = addon.info().threads;
  // The native run must really go through the fused kernels, and the plain run must not.
  const fusedKernels = async (f: () => void) => (await tf.profile(f)).kernels.map((k) => k.name).filter((n) => n.startsWith('FlipNative'));
  assert.ok((await fusedKernels(() => tf.dispose([...modelLossAndGrads().grads.values()]))).includes('FlipNativeAttentionSublayerGrad'));
  assert.deepEqual(await plain(() => fusedKernels(() => tf.dispose([...modelLossAndGrads().grads.values()]))), []);
  const native = modelLossAndGrads();
  addon.setThreads(threads === 1 ? 2 : 1);
  const otherThreads = modelLossAndGrads();
  addon.setThreads(threads);
  const reference = plain(modelLossAndGrads);
  assert.ok(Number.isFinite(native.loss) && native.loss > 0, `loss ${native.loss}`);
  assert.ok(Math.abs(native.loss - reference.loss) < 1e-5 * Math.max(1, Math.abs(reference.loss)), `loss: native ${native.loss}, plain ${reference.loss}`);
  assert.equal(native.loss, otherThreads.loss, 'loss with another thread count');
  assert.deepEqual([...native.grads.keys()].sort(), [...reference.grads.keys()].sort());
  assert.ok(native.grads.size > 40, `${native.grads.size} parameter gradients`);
  let worst = { name: '', err: 0 };
  for (const [name, g] of native.grads) {
    const err = await relativeError(g, reference.grads.get(name)!);
    if (err > worst.err) worst = { name, err };
    // Bit for bit: jobs on executors with different thread counts must record the same curves.
    assert.deepEqual(await g.data(), await otherThreads.grads.get(name)!.data(), `${name}: gradient differs with another thread count`);
  }
  if (process.env.FLIP_TEST_VERBOSE) console.log(`largest gradient difference: ${worst.name} ${worst.err}; loss ${native.loss} vs ${reference.loss}`);
  assert.ok(worst.err < 1e-4, `largest gradient difference from the plain implementation: ${worst.name} ${worst.err}`);
  for (const r of [native, otherThreads, reference]) tf.dispose([...r.grads.values()]);
});

/** The native engine's loss and gradients (model.store.params order) on modelAndBatch's batch. */
function nativeEngineLossAndGrads(imageRatio: number, size: number, textRatio: number): { loss: number; grads: Float32Array[]; names: string[] } {
  const { model, batch } = modelAndBatch(imageRatio, size, textRatio);
  const engine = new NativeEngine(model, loadNativeAddon().addon!);
  engine.lossAndGradients(batch);
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 });
  const grads = engine.readGradients();
  const { out } = engine.update(opt, 0);
  const loss = out.dataSync()[0];
  out.dispose();
  const names = model.store.params.map((p) => p.variable.name.replace(/#\d+$/, ''));
  model.dispose();
  return { loss, grads, names };
}

test('the native engine: both towers in one native call (a thread per tower at mask 0.75, halves of each batch at 0.5), odd batches too: bit for bit with 1 or 2 threads, and the plain autodiff loss and gradients', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const addon = loadNativeAddon().addon!;
  const threads = addon.info().threads;
  try {
    for (const [ratio, batch, textRatio] of [[0.75, 6, 0], [0.75, 5, 0], [0.5, 5, 0], [0.5, 1, 0], [0.5, 4, 0.5]]) {
      addon.setThreads(2);
      const two = nativeEngineLossAndGrads(ratio, batch, textRatio);
      addon.setThreads(1);
      const one = nativeEngineLossAndGrads(ratio, batch, textRatio);
      const reference = plain(() => modelLossAndGrads(ratio, batch, textRatio));
      assert.equal(two.loss, one.loss, `batch ${batch}: loss with 1 and 2 threads`);
      assert.ok(Math.abs(two.loss - reference.loss) < 1e-5 * Math.max(1, Math.abs(reference.loss)), `batch ${batch}: loss ${two.loss} vs plain ${reference.loss}`);
      for (let i = 0; i < two.grads.length; i++) {
        const name = two.names[i];
        assert.deepEqual(two.grads[i], one.grads[i], `batch ${batch}, ${name}: differs between 1 and 2 threads`);
        const want = reference.grads.get(name);
        assert.ok(want, `batch ${batch}: no reference gradient for ${name}`);
        const got = tf.tensor(two.grads[i], want.shape);
        const err = await relativeError(got, want);
        got.dispose();
        assert.ok(err < 1e-4, `batch ${batch}, ${name}: differs from the plain implementation by ${err}`);
      }
      tf.dispose([...reference.grads.values()]);
    }
  } finally {
    addon.setThreads(threads);
  }
});

test('the native engine against the autodiff engine on the native layer ops: the same losses over three AdamW steps; the logit-scale clamp on both', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const addon = loadNativeAddon().addon!;
  const adamw = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 };
  for (const [imageRatio, size, textRatio] of [[0.75, 6, 0], [0.5, 5, 0.5], [0, 3, 0]]) {
    const where = `image mask ${imageRatio}, batch ${size}, text mask ${textRatio}`;
    const { model, batch } = modelAndBatch(imageRatio, size, textRatio);
    const other = modelAndBatch(imageRatio, size, textRatio).model;
    const engines = [new NativeEngine(model, addon), new AutodiffEngine(other, addon)];
    const [optA, optB] = engines.map((e) => e.createOptimizer(adamw));
    for (let step = 0; step < 3; step++) {
      const a = trainStep(engines[0], optA, batch, 1e-3);
      const b = trainStep(engines[1], optB, batch, 1e-3);
      const [va, vb] = [await a.out.data(), await b.out.data()];
      // Losses, not parameters: the engines' kernels sum in different orders, and AdamW's first steps turn a rounding
      // difference in a near-zero gradient into a full step of the other sign, so parameters may differ by ~lr.
      assert.ok(Math.abs(va[0] - vb[0]) <= 1e-4 * Math.abs(vb[0]), `${where}, step ${step}: loss ${va[0]} vs ${vb[0]}`);
      assert.ok(Math.abs(va[1] - vb[1]) <= 1e-5, `${where}, step ${step}: log logit scale ${va[1]} vs ${vb[1]}`);
      tf.dispose([a.out, b.out]);
    }
    [optA, optB].forEach((o) => o.dispose());
    [model, other].forEach((m) => m.dispose());
  }
  // The logit scale is clamped to [0, log 100] after the update on either engine (lr 0: only the clamp moves it).
  for (const make of [(m: FlipModel) => new NativeEngine(m, addon), (m: FlipModel) => new AutodiffEngine(m, addon)]) {
    const { model, batch } = modelAndBatch(0.5, 2, 0);
    const engine = make(model);
    const opt = engine.createOptimizer(adamw);
    for (const [start, want] of [[5, Math.fround(LOGIT_SCALE_MAX)], [-1, 0], [2, 2]]) {
      model.logitScale.assign(tf.scalar(start));
      const { out } = trainStep(engine, opt, batch, 0);
      assert.equal((await out.data())[1], want, `${engine.name}: logit scale from ${start}, reported`);
      assert.equal(model.logitScale.dataSync()[0], want, `${engine.name}: logit scale from ${start}`);
      out.dispose();
    }
    opt.dispose();
    model.dispose();
  }
  // Where it does not apply, it says why: the plain kernels' backend, or an MAE decoder.
  const mae = buildModel(deepMerge(DEFAULTS, { loss: { reconstruction_weight: 1 } }), 100, 0);
  assert.match(nativeEngineUnsupported(mae) ?? '', /MAE decoder/);
  assert.throws(() => new NativeEngine(mae, addon), /MAE decoder/);
  mae.dispose();
});

test('the add-on refuses views that are too short or not Float32Array, with the argument named', (t) => {
  if (skipReason) return t.skip(skipReason);
  const addon = loadNativeAddon().addon!;
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  const c = new Float32Array(3); // a [2, 3] x b [3, 2] needs 4
  assert.throws(() => addon.gemm(a, b, c, 1, 2, 2, 3, false, false, 0, 0, 0, false), /gemm: c: has 3 floats, needs 4/);
  assert.throws(() => addon.gemm(a, b, new Float64Array(4) as unknown as Float32Array, 1, 2, 2, 3, false, false, 0, 0, 0, false), /gemm: c: expected a Float32Array/);
  assert.throws(() => addon.columnSums(a, b, 7, 1), /columnSums: x: has 6 floats, needs 7/);
  assert.throws(() => (addon.gemm as unknown as (...x: unknown[]) => void)(a, b), /gemm: expected 13 arguments, got 2/);
  assert.throws(() => addon.layerNormForward(a, a, a, 1e-5, b, b, b, 2, -3), /layerNormForward: d: expected an integer >= 0/);
  assert.throws(() => addon.adamwStep([a], [b], [c], [a], [a], new Float32Array(1), 0.1, 0.9, 0.95, 1e-8, 1, 1, 0), /adamwStep: m\[0\]: has 3 floats, needs 6/);
});

test('the CLIP head in one kernel each way: final LayerNorms, mean or first-token pooling, projections and the loss match the plain ops, with every gradient', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // [batch, tokens of tower A, tokens of tower B, width, embed, log scale, pooling of A, pooling of B]
  const cases = [
    [5, 7, 4, 24, 8, 0.3, 'mean', 'first'],
    [64, 17, 16, 128, 128, Math.log(1 / 0.07), 'mean', 'first'],
    [3, 2, 5, 16, 4, Math.log(100), 'first', 'mean'],
  ] as const;
  for (const [b, ta, tb, d, e, logScale, poolA, poolB] of cases) {
    const where = `B=${b}, tokens ${ta}/${tb}, pools ${poolA}/${poolB}`;
    const inputs = [randn([b * (ta + tb), d], 40 + b, 2), randn([d], 41), randn([d], 42), randn([d, e], 43, 0.3), randn([d], 44), randn([d], 45), randn([d, e], 46, 0.3), tf.scalar(logScale)];
    const fused = (h: tf.Tensor, ga: tf.Tensor, ba: tf.Tensor, pa: tf.Tensor, gb: tf.Tensor, bb: tf.Tensor, pb: tf.Tensor, ls: tf.Tensor) =>
      nativeClipHead(h as tf.Tensor2D, b, [
        { tokens: ta, pool: poolA, lnFinal: { gamma: ga as tf.Tensor1D, beta: ba as tf.Tensor1D }, proj: pa },
        { tokens: tb, pool: poolB, lnFinal: { gamma: gb as tf.Tensor1D, beta: bb as tf.Tensor1D }, proj: pb },
      ], ls as tf.Scalar, LN_EPS);
    // The plain head: split, LayerNorm, pooling by constant products, projection, l2Normalize, contrastiveLoss.
    const tower = (h: tf.Tensor2D, tokens: number, pool: 'mean' | 'first', g: tf.Tensor, be: tf.Tensor, p: tf.Tensor) => {
      const pooling = pool === 'mean' ? meanPoolMatrix(b, tokens) : selectMatrix(b, tokens, 0);
      return l2Normalize(matMul2d(constMatMul(pooling.m, pooling.mT, plainLayerOps.layerNorm(h, g as tf.Tensor1D, be as tf.Tensor1D)), p as tf.Tensor2D));
    };
    const reference = (h: tf.Tensor, ga: tf.Tensor, ba: tf.Tensor, pa: tf.Tensor, gb: tf.Tensor, bb: tf.Tensor, pb: tf.Tensor, ls: tf.Tensor) => {
      const [hA, hB] = tf.split(h, [b * ta, b * tb], 0) as tf.Tensor2D[];
      return contrastiveLoss(tower(hA, ta, poolA, ga, ba, pa), tower(hB, tb, poolB, gb, bb, pb), ls as tf.Scalar);
    };
    const got = tf.valueAndGrads(fused as (...x: tf.Tensor[]) => tf.Scalar)(inputs);
    const want = plain(() => tf.valueAndGrads(reference as (...x: tf.Tensor[]) => tf.Scalar)(inputs));
    assert.ok((await relativeError(got.value, want.value)) < 1e-5, `${where}: loss ${(await got.value.data())[0]} vs ${(await want.value.data())[0]}`);
    const names = ['h', 'lnGammaA', 'lnBetaA', 'projA', 'lnGammaB', 'lnBetaB', 'projB', 'logScale'];
    for (let i = 0; i < names.length; i++) {
      const err = await relativeError(got.grads[i], want.grads[i]);
      assert.ok(err < 1e-5, `${where}: gradient of ${names[i]} differs by ${err}`);
    }
    // Rows that the first-token pooling never reads get no gradient.
    if (poolB === 'first') {
      const dh = await got.grads[0].data();
      const firstUnread = (b * ta + 1) * d;
      assert.ok(dh.subarray(firstUnread, firstUnread + d).every((v) => v === 0), `${where}: an unread row got a gradient`);
    }
    tf.dispose([...inputs, got.value, want.value, ...got.grads, ...want.grads]);
  }
});

test('the towers\' inputs in one kernel each way: patch embedding with positions and CLS rows, token embedding with repeated ids and text-masked positions', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const config = deepMerge(DEFAULTS, {});
  const store = new ParamStore(3);
  const rng = makeRng(8);
  /** The value of f and the gradients of sum(f * R) for the given variables, on the native and the plain ops. */
  const compare = async (what: string, f: (ops: LayerOps) => tf.Tensor, vars: tf.Variable[]) => {
    const run = (ops: LayerOps) =>
      tf.tidy(() => {
        const value = f(ops);
        const r = randn(value.shape, 77);
        const { grads } = tf.variableGrads(() => tf.sum(tf.mul(f(ops), r)) as tf.Scalar, vars);
        return [value, ...vars.map((v) => grads[v.name])];
      });
    const got = run(nativeLayerOps);
    const want = plain(() => run(plainLayerOps));
    for (let i = 0; i < got.length; i++) {
      const err = await relativeError(got[i], want[i]);
      assert.ok(err < 1e-5, `${what}: ${i === 0 ? 'value' : `gradient of ${vars[i - 1].name}`} differs from the plain ops by ${err}`);
    }
    tf.dispose([...got, ...want]);
  };

  const vit = new VisionTransformer(store, config.model.image, config.data.image_size, plainLayerOps);
  const images = Array.from({ length: 3 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => rng()));
  const image = vit.tokens(images, sampleKeepIndices(3, vit.numPatches, 5, rng));
  const vp = vit.params;
  const pixels = tf.tensor2d(image.pixels, [image.pixels.length / vit.patchValues, vit.patchValues]);
  const patchArgs = { w: vp.patchW, b: vp.patchB, cls: vp.cls, positionTable: vit.positionTable, numPatches: vit.numPatches };
  await compare('patch embedding', (ops) => ops.patchEmbedding(pixels, image.keep, 3, patchArgs), [vp.patchW, vp.patchB, vp.cls]);
  pixels.dispose();

  const text = new TextEncoder(store, config.model.text, 50, plainLayerOps);
  const ctx = config.model.text.context_length;
  const ids = Int32Array.from({ length: 4 * ctx }, (_, i) => (i % ctx === 0 ? 1 : 2 + Math.floor(rng() * 6))); // few ids: many repeats
  const tables = [text.params.tokens, text.params.positions];
  const [tok, pos] = [text.params.tokens, text.params.positions];
  await compare('token embedding', (ops) => ops.tokenEmbedding(ids, fullPositions(4, ctx), 4, tok, pos), tables);
  const masked = maskText(ids, 4, 0.5, 'random', 0, rng);
  await compare('token embedding, text-masked positions', (ops) => ops.tokenEmbedding(masked.ids, masked.positions, 4, tok, pos), tables);
  store.dispose();

  // Indices are checked in the add-on: a wrong one is an error naming it, never a read outside the table.
  const addon = loadNativeAddon().addon!;
  const f = (n: number) => new Float32Array(n);
  assert.throws(() => addon.tokenEmbeddingForward(Int32Array.of(1, 50), Int32Array.of(0, 1), f(200), f(64), f(8), 2, 50, 16, 4), /tokenEmbeddingForward: ids\[1\] = 50 is outside \[0, 50\)/);
  assert.throws(() => addon.tokenEmbeddingForward(Int32Array.of(1, 2), Int32Array.of(0, -1), f(200), f(64), f(8), 2, 50, 16, 4), /positions\[1\] = -1 is outside \[0, 16\)/);
  assert.throws(() => addon.patchEmbeddingForward(f(2 * 3 * 48), Int32Array.of(0, 3, 64, 1), f(48 * 4), f(4), f(4), f(64 * 4), f(24), 2, 3, 48, 4, 64), /patchEmbeddingForward: keep\[2\] = 64 is outside \[0, 64\)/);
  assert.throws(() => addon.patchEmbeddingForward(f(2 * 3 * 48), Int32Array.of(0, 3, 1), f(48 * 4), f(4), f(4), f(64 * 4), f(24), 2, 3, 48, 4, 64), /keep: has 3 indices, expected 4/);
});

test('AdamW in one native call: in place unless another tensor shares the parameter, the same values either way and as the plain loop', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // 90,000 elements: split across the threads, with a part boundary inside the tensor.
  const shapes = [[300, 300], [128], [7, 5]];
  // tidy: the initial values' tensors are disposed, as in a model, so only the variables hold the memory.
  const makeParams = (): Param[] => shapes.map((shape, i) => ({ name: `p${i}`, variable: tf.tidy(() => tf.variable(randn(shape, 10 + i))), decay: i !== 1 }));
  const [inPlace, shared, reference] = [makeParams(), makeParams(), makeParams()];
  const clones = shared.map((p) => tf.clone(p.variable)); // share the parameters' memory: these must keep their values
  const before = await Promise.all(clones.map((c) => c.data()));
  const o = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 };
  const addon = loadNativeAddon().addon!;
  // The reference is the plain JS loop: an AdamW without the add-on.
  const opts = [new AdamW(inPlace, o, addon), new AdamW(shared, o, addon), new AdamW(reference, o, null)];
  const dataIds = inPlace.map((p) => p.variable.dataId);
  for (let step = 0; step < 3; step++) {
    const grads = shapes.map((shape, i) => randn(shape, 100 * step + i));
    opts[0].step(grads, 0.01);
    opts[1].step(grads, 0.01);
    opts[2].step(grads, 0.01);
    tf.dispose(grads);
  }
  inPlace.forEach((p, i) => assert.equal(p.variable.dataId, dataIds[i], `${p.name} was updated in place`));
  for (let i = 0; i < shapes.length; i++) {
    assert.deepEqual(await inPlace[i].variable.data(), await shared[i].variable.data(), `p${i}: in place and fresh outputs agree bit for bit`);
    assert.deepEqual(await clones[i].data(), before[i], `p${i}: the clone kept its values`);
    // The plain loop computes in doubles before rounding; the native one in floats.
    assert.ok((await relativeError(inPlace[i].variable, reference[i].variable)) < 1e-6, `p${i}: native vs plain loop`);
    assert.ok((await relativeError(inPlace[i].variable, clones[i])) > 1e-4, `p${i}: the parameter did change`);
  }
  opts.forEach((opt) => opt.dispose());
  tf.dispose([...clones, ...[inPlace, shared, reference].flat().map((p) => p.variable)]);
});
