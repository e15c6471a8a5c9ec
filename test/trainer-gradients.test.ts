/** Finite-difference checks of every hand-written gradient (linear, layerNorm, quickGelu, constMatMul, batched
 * attention product, gather via the JS UnsortedSegmentSum kernel) on tiny shapes, on the wasm backend. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { batchMatMulPlain } from '../models/kernels/batch-matmul-wasm.js';
import { segmentSumJs } from '../models/kernels/unsorted-segment-sum.js';
import { attention, makeAttention } from '../models/nn/attention.js';
import { layerNorm } from '../models/nn/layernorm.js';
import { constMatMul, linear, matMul2d } from '../models/nn/linear.js';
import { quickGelu } from '../models/nn/mlp.js';
import { ParamStore } from '../models/nn/params.js';
import { makeRng } from '../models/random.js';

before(async () => {
  const info = await selectBackend('wasm');
  assert.equal(info.backend, 'wasm');
});

function randn(shape: number[], seed: number): tf.Tensor {
  const rng = makeRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng() * 2 - 1), shape);
}

/**
 * Checks d/dinputs of sum(f(inputs) * R) (R a fixed random projection) against central differences in float64-ish
 * steps of float32 inputs. Every coordinate of every input (shapes are tiny).
 */
async function checkGrad(name: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], eps = 1e-2, tol = 2e-2): Promise<void> {
  const out = f(...inputs);
  const proj = randn(out.shape, 99);
  out.dispose();
  const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), proj)) as tf.Scalar;
  const grads = tf.grads(loss)(inputs);
  for (let i = 0; i < inputs.length; i++) {
    const analytic = await grads[i].data();
    const base = await inputs[i].data();
    for (let j = 0; j < base.length; j++) {
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[j] += eps;
      minus[j] -= eps;
      const xsPlus = inputs.map((x, k) => (k === i ? tf.tensor(plus, x.shape) : x));
      const xsMinus = inputs.map((x, k) => (k === i ? tf.tensor(minus, x.shape) : x));
      const lp = (await tf.tidy(() => loss(...xsPlus)).data())[0];
      const lm = (await tf.tidy(() => loss(...xsMinus)).data())[0];
      xsPlus[i].dispose();
      xsMinus[i].dispose();
      const numeric = (lp - lm) / (2 * eps);
      const err = Math.abs(numeric - analytic[j]) / Math.max(1, Math.abs(numeric));
      assert.ok(err < tol, `${name}: input ${i} coordinate ${j}: analytic ${analytic[j]} vs numeric ${numeric} (error ${err})`);
    }
  }
  grads.forEach((g) => g.dispose());
  proj.dispose();
}

test('linear with bias: gradients of x, w, b', async () => {
  await checkGrad('linear', (x, w, b) => linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), [randn([5, 4], 1), randn([4, 3], 2), randn([3], 3)]);
});

test('matMul2d: gradients of both factors', async () => {
  await checkGrad('matMul2d', (x, w) => matMul2d(x as tf.Tensor2D, w as tf.Tensor2D), [randn([3, 4], 4), randn([4, 2], 5)]);
});

test('constMatMul: gradient of x through a constant matrix', async () => {
  const m = randn([2, 6], 6) as tf.Tensor2D;
  const mT = tf.transpose(m) as tf.Tensor2D;
  await checkGrad('constMatMul', (x) => constMatMul(m, mT, x as tf.Tensor2D), [randn([6, 3], 7)]);
});

test('layerNorm: gradients of x, gamma, beta', async () => {
  await checkGrad('layerNorm', (x, g, b) => layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D), [randn([4, 6], 8), randn([6], 9), randn([6], 10)], 1e-2, 3e-2);
});

test('layerNorm forward matches the textbook formula', async () => {
  const x = randn([3, 5], 11) as tf.Tensor2D;
  const ours = layerNorm(x, tf.ones([5]), tf.zeros([5]));
  const { mean, variance } = tf.moments(x, -1, true);
  const ref = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5)));
  const diff = (await tf.max(tf.abs(tf.sub(ours, ref))).data())[0];
  assert.ok(diff < 1e-5, `max difference ${diff}`);
});

test('quickGelu: gradient', async () => {
  await checkGrad('quickGelu', (x) => quickGelu(x as tf.Tensor2D), [tf.mul(randn([3, 4], 12), 3)]);
});

test('looped batched matMul equals tf.matMul', async () => {
  const a = randn([5, 3, 4], 13) as tf.Tensor3D;
  const b = randn([5, 4, 6], 14) as tf.Tensor3D;
  const diff = (await tf.max(tf.abs(tf.sub(batchMatMulPlain(a, b), tf.matMul(a, b)))).data())[0];
  assert.ok(diff < 1e-5, `max difference ${diff}`);
});

test('attention (batched products, key padding bias): gradient of the input', async () => {
  const store = new ParamStore(1);
  const p = makeAttention(store, 'att', 8, 2);
  const bias = tf.tensor4d([0, 0, -1e9, 0, 0, 0], [2, 1, 1, 3]); // sample 0's third token is padding
  await checkGrad('attention', (x) => attention(p, x as tf.Tensor2D, 2, 3, bias), [randn([6, 8], 15)], 1e-2, 3e-2);
  store.dispose();
});

test('gather gradient through the JS UnsortedSegmentSum kernel', async () => {
  const idx = tf.tensor1d([2, 0, 2, 3], 'int32');
  await checkGrad('gather', (t) => tf.gather(t, idx), [randn([4, 3], 16)]);
  assert.deepEqual(Array.from(segmentSumJs([1, 2, 3, 4, 5, 6], [1, 1, 0], 3, 2)), [5, 6, 4, 6, 0, 0]);
});

test('addPerSample: gradients of x and the per-sample table', async () => {
  const { addPerSample } = await import('../models/nn/linear.js');
  await checkGrad('addPerSample', (x, t) => addPerSample(x as tf.Tensor2D, t as tf.Tensor2D), [randn([6, 2], 17), randn([3, 2], 18)]);
});

test('blocked transpose (power-of-two shapes) equals the reference, rank 2 and batched rank 3', async () => {
  const { useBlocked } = await import('../models/kernels/transpose-wasm.js');
  assert.ok(useBlocked(1024, 128) && !useBlocked(4160, 128));
  for (const [shape, perm] of [[[256, 384], [1, 0]], [[2, 128, 512], [0, 2, 1]], [[130, 7], [1, 0]]] as [number[], number[]][]) {
    const x = randn(shape, 19);
    const values = await x.data();
    const got = await tf.transpose(x, perm).data();
    const [g, m, n] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
    for (let b = 0; b < g; b++) {
      for (let r = 0; r < m; r += 7) {
        for (let c = 0; c < n; c += 5) {
          assert.equal(got[b * m * n + c * m + r], values[b * m * n + r * n + c], `shape [${shape}] at (${b}, ${r}, ${c})`);
        }
      }
    }
  }
});

test('MAE decoder: targets are per-patch normalised on removed patches only; loss gradient of the encoder tokens', async () => {
  const { MaeDecoder, maeTargets } = await import('../models/nn/mae-decoder.js');
  const { plainLayerOps } = await import('../models/nn/layer-ops.js');
  // 2 samples, 4 patches of 3 values, 2 kept per sample.
  const patches = Float32Array.from({ length: 2 * 4 * 3 }, (_, i) => Math.sin(i * 1.3));
  const keep = Int32Array.from([1, 3, 0, 2]);
  const t = maeTargets(patches, keep, 2, 4, 3);
  assert.deepEqual(Array.from(t.weight), [0, 1, 0, 1, 0, 0, 0, 1, 0, 1]);
  assert.deepEqual(Array.from(t.sourceRows), [0, 6, 1, 6, 2, 3, 4, 6, 5, 6]); // mask token is row 2 * 3 = 6
  const row = Array.from(t.target.subarray(3, 6)); // sample 0, patch 0
  const mean = row.reduce((a, b) => a + b, 0) / 3;
  const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 3;
  assert.ok(Math.abs(mean) < 1e-5 && Math.abs(variance - 1) < 1e-3, `normalised patch mean ${mean}, variance ${variance}`);

  const store = new ParamStore(2);
  const dec = new MaeDecoder(store, { width: 8, depth: 1, heads: 2, mlp_ratio: 2 }, 4, 2, 3, plainLayerOps);
  await checkGrad('maeDecoder', (enc) => dec.loss(enc as tf.Tensor2D, t, 2), [randn([6, 4], 20)], 1e-2, 3e-2);
  store.dispose();
});
