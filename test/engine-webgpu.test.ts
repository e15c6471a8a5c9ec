/**
 * The WebGPU engine (models/engine/webgpu/) on whatever adapter this machine has (on a CPU-only machine: Mesa's
 * llvmpipe through OpenGL ES): every kernel's output against a CPU computation in doubles, one full step's loss and
 * every parameter gradient against the autodiff engine (tfjs's cpu backend, plain layer ops), text masking, a 20-step
 * run against the CPU run with the same seed, and the call budget per step counted through a wrapped device.
 *
 * Skips with the reason when the `webgpu` package or an adapter is missing, unless FLIP_TEST_REQUIRE_WEBGPU=1 (CI).
 * Shapes are small: llvmpipe is slow.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, type TrainConfig } from '../models/config.js';
import { AutodiffEngine } from '../models/engine/autodiff.js';
import type { Engine } from '../models/engine/engine.js';
import { createEngine } from '../models/engine/select.js';
import { tfWebgpuBackend, USAGE, MAP_READ_MODE } from '../models/engine/webgpu/gpu.js';
import { WebGpuEngine } from '../models/engine/webgpu/engine.js';
import { adamwUniform } from '../models/engine/webgpu/kernels/adamw.js';
import { attentionGroups, attentionUniform } from '../models/engine/webgpu/kernels/attention.js';
import { columnSumGrid, columnSumUniform } from '../models/engine/webgpu/kernels/column-sum.js';
import { contrastiveUniform } from '../models/engine/webgpu/kernels/contrastive.js';
import { patchPositionsUniform, scatterRowsUniform, segments, segmentWords, tokenEmbeddingUniform } from '../models/engine/webgpu/kernels/embedding.js';
import { GEMM_FLAGS as F, gemmGrid, gemmUniform, splitK, type GemmArgs } from '../models/engine/webgpu/kernels/gemm.js';
import { layerNormBackwardUniform, layerNormParamGradChunks, layerNormParamGradGrid, layerNormParamGradUniform, layerNormUniform } from '../models/engine/webgpu/kernels/layernorm.js';
import { sumPartialsGroups, sumPartialsUniform } from '../models/engine/webgpu/kernels/partials.js';
import { l2NormUniform, poolUniform } from '../models/engine/webgpu/kernels/pooling.js';
import { decoderInputUniform, patchLossUniform } from '../models/engine/webgpu/kernels/reconstruction.js';
import { grid } from '../models/engine/webgpu/gpu.js';
import { pipeline, type KernelName } from '../models/engine/webgpu/pipelines.js';
import { FlipModel, fullPositions, maskText } from '../models/flip-model.js';
import { plainLayerOps } from '../models/nn/layer-ops.js';
import { makeRng } from '../models/random.js';
import { PAD_BIAS } from '../models/text-encoder.js';
import { buildTrainBatch } from '../models/train.js';

let device: GPUDevice | null = null;
let unavailable = '';

before(async () => {
  try {
    await import('webgpu' as string);
    const { useWebgpu } = await import('../models/backends/webgpu.js');
    await useWebgpu({ allowSoftware: true });
    device = tfWebgpuBackend()?.device ?? null;
    if (!device) throw new Error(`the webgpu backend is active but exposes no device (backend ${tf.getBackend()})`);
  } catch (e) {
    if (process.env.FLIP_TEST_REQUIRE_WEBGPU === '1') throw e;
    unavailable = (e as Error).message.split('\n')[0];
  }
});
after(() => {
  delete process.env.FLIP_ENGINE;
});

/** The device, or null after skipping the test with the reason. */
function gpu(t: { skip(msg: string): void }): GPUDevice | null {
  if (!device) t.skip(`webgpu unavailable: ${unavailable}`);
  return device;
}

type HostArray = Float32Array | Uint32Array;

/** Runs one kernel over buffers made from `arrays` (in binding order) and returns every buffer's contents after. */
async function runKernel(dev: GPUDevice, kernel: KernelName, arrays: HostArray[], uniform: ArrayBuffer, g: [number, number, number]): Promise<Float32Array[]> {
  dev.pushErrorScope('validation');
  const bufs = arrays.map((a) => {
    const b = dev.createBuffer({ size: Math.max(16, a.byteLength), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
    dev.queue.writeBuffer(b, 0, a);
    return b;
  });
  const ub = dev.createBuffer({ size: uniform.byteLength, usage: USAGE.UNIFORM | USAGE.COPY_DST });
  dev.queue.writeBuffer(ub, 0, uniform);
  const p = pipeline(dev, kernel);
  const bg = dev.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [...bufs.map((b, i) => ({ binding: i, resource: { buffer: b } })), { binding: bufs.length, resource: { buffer: ub } }] });
  const enc = dev.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(...g);
  pass.end();
  const staging = bufs.map((b) => dev.createBuffer({ size: b.size, usage: USAGE.MAP_READ | USAGE.COPY_DST }));
  bufs.forEach((b, i) => enc.copyBufferToBuffer(b, 0, staging[i], 0, b.size));
  dev.queue.submit([enc.finish()]);
  const err = await dev.popErrorScope();
  if (err) throw new Error(`${kernel}: ${err.message}`);
  const out = await Promise.all(
    staging.map(async (s, i) => {
      await s.mapAsync(MAP_READ_MODE);
      const v = new Float32Array(s.getMappedRange().slice(0, arrays[i].byteLength));
      s.unmap();
      s.destroy();
      return v;
    }),
  );
  for (const b of [...bufs, ub]) b.destroy();
  return out;
}

/** max |got - want| / max |want|. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, 'lengths');
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return den === 0 ? num : num / den;
}

function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-4): void {
  const e = relErr(got, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}

const randn = (n: number, rng: () => number, scale = 1) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
const gelu = (x: number) => x / (1 + Math.exp(-1.702 * x));
const geluGrad = (u: number) => {
  const s = 1 / (1 + Math.exp(-1.702 * u));
  return s + 1.702 * u * s * (1 - s);
};

/** The GEMM's meaning, in doubles. */
function gemmReference(a: GemmArgs, A: Float32Array, B: Float32Array, bias: Float32Array, aux: Float32Array, C: Float32Array): Float32Array {
  const out = Float32Array.from(C);
  const flags = a.flags ?? 0;
  const Z = a.Z ?? 1;
  const sumZ = (flags & F.sumZ) !== 0;
  for (let zc = 0; zc < (sumZ ? 1 : Z); zc++) {
    for (let m = 0; m < a.M; m++) {
      for (let n = 0; n < a.N; n++) {
        let acc = 0;
        for (let z = sumZ ? 0 : zc; z < (sumZ ? Z : zc + 1); z++) {
          for (let k = 0; k < a.K; k++) {
            let av = flags & F.transA ? A[(a.aOff ?? 0) + z * (a.aZ ?? 0) + k * a.M + m] : A[(a.aOff ?? 0) + z * (a.aZ ?? 0) + m * a.K + k];
            if (flags & F.geluA) av = gelu(av);
            const bv = flags & F.transB ? B[(a.bOff ?? 0) + z * (a.bZ ?? 0) + n * a.K + k] : B[(a.bOff ?? 0) + z * (a.bZ ?? 0) + k * a.N + n];
            acc += av * bv;
          }
        }
        let v = acc * (a.alpha ?? 1);
        if (flags & F.bias) v += bias[(a.biasOff ?? 0) + zc * (a.biasZ ?? 0) + n];
        if (flags & F.gelu) v = gelu(v);
        const ai = (a.auxOff ?? 0) + zc * (a.auxZ ?? 0) + m * a.N + n;
        if (flags & F.geluGrad) v *= geluGrad(aux[ai]);
        if (flags & F.residual) v += aux[ai];
        out[(a.cOff ?? 0) + zc * (a.cZ ?? 0) + m * a.N + n] = v;
      }
    }
  }
  return out;
}

test('kernel gemm: every epilogue, transposes, batched and summed Z, ragged tiles, operand offsets', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(11);
  const M = 37;
  const N = 70;
  const K = 19;
  const cases: [string, GemmArgs][] = [
    ['plain', { M, N, K }],
    ['bias + gelu', { M, N, K, flags: F.bias | F.gelu, biasOff: 3 }],
    ['transA + residual', { M, N, K, flags: F.transA | F.residual, aOff: 5, auxOff: 2 }],
    ['transB + geluGrad', { M, N, K, flags: F.transB | F.geluGrad, bOff: 7 }],
    ['geluA + bias + residual, alpha', { M, N, K, flags: F.geluA | F.bias | F.residual, alpha: 0.5 }],
    ['Z=3 independent', { M, N, K, Z: 3, aZ: 0, bZ: K * N, cZ: M * N, biasZ: N, flags: F.bias, cOff: 4 }],
    ['Z=3 summed, transB', { M, N, K, Z: 3, aZ: M * K, bZ: N * K, flags: F.sumZ | F.transB }],
    ['transA + transB, large K', { M: 65, N: 3, K: 130, flags: F.transA | F.transB }],
  ];
  for (const [name, a] of cases) {
    const Z = a.Z ?? 1;
    const A = randn(Z * Math.max(a.M, a.K) * Math.max(a.M, a.K) + 16, rng);
    const B = randn(Z * a.K * a.N + 16, rng);
    const C = randn(Z * a.M * a.N + 8, rng);
    const bias = randn(Z * a.N + 8, rng);
    const aux = randn(Z * a.M * a.N + 8, rng);
    const [, , got] = await runKernel(dev, 'gemm', [A, B, C, bias, aux], gemmUniform(a), gemmGrid(a));
    assertClose(`gemm ${name}`, got, gemmReference(a, A, B, bias, aux, C));
  }
  // Weight gradients: K split into chunks of partial products (with B's column sums, the bias gradient, as an extra
  // row), summed into the gradient buffer.
  for (const [name, a, rows] of [
    ['one chunk', { M: 37, N: 70, K: 19, flags: F.transA }, 256],
    ['five chunks, gelu on A', { M: 37, N: 70, K: 150, flags: F.transA | F.geluA }, 32],
    ['Z=3, four chunks', { M: 20, N: 24, K: 61, Z: 3, bZ: 61 * 24, flags: F.transA }, 16],
  ] as [string, GemmArgs, number][]) {
    const Z = a.Z ?? 1;
    const { kSplit, kChunk } = splitK(a.K, a.M, a.N, Z, rows, 1e9);
    const A = randn(a.K * a.M, rng);
    const B = randn(Z * a.K * a.N, rng);
    const g = { ...a, flags: (a.flags ?? 0) | F.partial, kSplit, kChunk };
    const [, , part] = await runKernel(dev, 'gemm', [A, B, new Float32Array(Z * kSplit * (a.M + 1) * a.N), new Float32Array(4), new Float32Array(4)], gemmUniform(g), gemmGrid(g));
    const outOff = 5;
    const biasOff = 5 + Z * a.M * a.N;
    const sum = { S: kSplit, M: a.M, N: a.N, Z, cOff: outOff, cZ: a.M * a.N, biasOff, biasZ: a.N };
    const [, grads] = await runKernel(dev, 'sumPartials', [part, new Float32Array(biasOff + Z * a.N)], sumPartialsUniform(sum), grid(sumPartialsGroups(sum)));
    const want = gemmReference({ ...a, cOff: outOff, cZ: a.M * a.N }, A, B, new Float32Array(0), new Float32Array(0), new Float32Array(biasOff + Z * a.N));
    for (let z = 0; z < Z; z++) for (let k = 0; k < a.K; k++) for (let n = 0; n < a.N; n++) want[biasOff + z * a.N + n] += B[z * a.K * a.N + k * a.N + n];
    assert.equal(kSplit > 1, name !== 'one chunk', `${name}: ${kSplit} chunks`);
    assertClose(`gemm partial ${name}`, grads, want);
  }
});

/** LayerNorm forward, backward (with residual) and parameter gradients in doubles. */
function layerNormReference(x: Float32Array, gamma: Float32Array, beta: Float32Array, dy: Float32Array, res: Float32Array, rows: number, D: number, eps: number) {
  const y = new Float32Array(rows * D);
  const dx = new Float32Array(rows * D);
  const dg = new Float64Array(D);
  const db = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * D, r * D + D);
    const mean = row.reduce((s, v) => s + v, 0) / D;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
    const rstd = 1 / Math.sqrt(variance + eps);
    let m1 = 0;
    let m2 = 0;
    for (let c = 0; c < D; c++) {
      const xh = (row[c] - mean) * rstd;
      y[r * D + c] = xh * gamma[c] + beta[c];
      const g = dy[r * D + c] * gamma[c];
      m1 += g / D;
      m2 += (g * xh) / D;
      dg[c] += dy[r * D + c] * xh;
      db[c] += dy[r * D + c];
    }
    for (let c = 0; c < D; c++) {
      const xh = (row[c] - mean) * rstd;
      dx[r * D + c] = rstd * (dy[r * D + c] * gamma[c] - m1 - xh * m2) + res[r * D + c];
    }
  }
  return { y, dx, dg: Float32Array.from(dg), db: Float32Array.from(db) };
}

test('kernel layerNorm: forward, input gradient with a residual, gamma/beta gradients', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(12);
  const rows = 9;
  const D = 80;
  const x = randn(rows * D, rng, 3);
  const prm = randn(2 * D + 5, rng);
  const gOff = 5;
  const bOff = 5 + D;
  const gamma = prm.slice(gOff, gOff + D);
  const beta = prm.slice(bOff, bOff + D);
  const dy = randn(rows * D, rng);
  const res = randn(rows * D, rng);
  const want = layerNormReference(x, gamma, beta, dy, res, rows, D, 1e-5);
  const [, , y, stats] = await runKernel(dev, 'layerNorm', [x, prm, new Float32Array(rows * D), new Float32Array(2 * rows)], layerNormUniform({ rows, D, gammaOff: gOff, betaOff: bOff, eps: 1e-5 }), grid(rows));
  assertClose('layerNorm forward', y, want.y);
  const [, , , , , dx] = await runKernel(dev, 'layerNormBackward', [dy, x, stats, prm, res, new Float32Array(rows * D)], layerNormBackwardUniform({ rows, D, gammaOff: gOff, residual: true }), grid(rows));
  assertClose('layerNorm input gradient', dx, want.dx);
  for (const rowChunk of [64, 4]) {
    // Row chunks' partial sums, then their sum into the gradient buffer.
    const pa = { rows, D, rowChunk };
    const S = layerNormParamGradChunks(pa);
    const [, , , part] = await runKernel(dev, 'layerNormParamGrad', [dy, x, stats, new Float32Array(S * 2 * D)], layerNormParamGradUniform(pa), layerNormParamGradGrid(pa));
    const sum = { S, M: 1, N: D, cOff: 3, biasOff: 3 + D };
    const [, grads] = await runKernel(dev, 'sumPartials', [part, new Float32Array(2 * D + 3)], sumPartialsUniform(sum), grid(sumPartialsGroups(sum)));
    assertClose(`layerNorm gamma gradient, ${S} chunks`, grads.slice(3, 3 + D), want.dg);
    assertClose(`layerNorm beta gradient, ${S} chunks`, grads.slice(3 + D, 3 + 2 * D), want.db);
  }
});

test('kernel columnSum: all rows, every k-th row, three matrices at once', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(13);
  const rows = 21;
  const D = 70;
  const x = randn(3 * rows * D, rng);
  for (const a of [{ rows, D, outOff: 2 }, { rows, D, rowStep: 7, outOff: 0 }, { rows, D, Z: 3, xZ: rows * D, outOff: 1, outZ: D }]) {
    const Z = a.Z ?? 1;
    const want = new Float32Array(Z * D + 2);
    for (let z = 0; z < Z; z++) for (let r = 0; r < rows; r += a.rowStep ?? 1) for (let c = 0; c < D; c++) want[a.outOff + z * D + c] += x[z * rows * D + r * D + c];
    const [, got] = await runKernel(dev, 'columnSum', [x, new Float32Array(Z * D + 2)], columnSumUniform(a), columnSumGrid(a));
    assertClose(`columnSum ${JSON.stringify(a)}`, got, want);
  }
});

/** Attention forward and backward in doubles; q, k, v stacked [3, B*T, D]. */
function attentionReference(qkv: Float32Array, bias: Float32Array, dO: Float32Array, B: number, T: number, H: number, D: number) {
  const dh = D / H;
  const N = B * T;
  const scale = 1 / Math.sqrt(dh);
  const o = new Float32Array(N * D);
  const dqkv = new Float32Array(3 * N * D);
  const at = (z: number, b: number, t: number, h: number, c: number) => z * N * D + (b * T + t) * D + h * dh + c;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const P: number[][] = [];
      for (let i = 0; i < T; i++) {
        const s = Array.from({ length: T }, (_, j) => {
          let d = 0;
          for (let c = 0; c < dh; c++) d += qkv[at(0, b, i, h, c)] * qkv[at(1, b, j, h, c)];
          return d * scale + bias[b * T + j];
        });
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const sum = e.reduce((x, y) => x + y, 0);
        P.push(e.map((v) => v / sum));
        for (let c = 0; c < dh; c++) o[(b * T + i) * D + h * dh + c] = P[i].reduce((acc, p, j) => acc + p * qkv[at(2, b, j, h, c)], 0);
      }
      for (let i = 0; i < T; i++) {
        const dp = Array.from({ length: T }, (_, j) => {
          let d = 0;
          for (let c = 0; c < dh; c++) d += dO[(b * T + i) * D + h * dh + c] * qkv[at(2, b, j, h, c)];
          return d;
        });
        const di = P[i].reduce((acc, p, j) => acc + p * dp[j], 0);
        for (let j = 0; j < T; j++) {
          const ds = P[i][j] * (dp[j] - di);
          for (let c = 0; c < dh; c++) {
            dqkv[at(0, b, i, h, c)] += scale * ds * qkv[at(1, b, j, h, c)];
            dqkv[at(1, b, j, h, c)] += scale * ds * qkv[at(0, b, i, h, c)];
            dqkv[at(2, b, j, h, c)] += P[i][j] * dO[(b * T + i) * D + h * dh + c];
          }
        }
      }
    }
  }
  return { o, dqkv };
}

test('kernel attention: forward and both backward halves, with padding keys masked by the key bias', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(14);
  const [B, T, H, D] = [2, 21, 2, 144]; // threads past the first 8 (llvmpipe's SIMD width) matter, dh > 64 too
  const N = B * T;
  const qkv = randn(3 * N * D, rng, 1.5);
  const bias = new Float32Array(N);
  bias.fill(PAD_BIAS, T - 3, T); // sample 0's last three tokens are padding
  const dO = randn(N * D, rng);
  const want = attentionReference(qkv, bias, dO, B, T, H, D);
  const a = { batch: B, tokens: T, heads: H, width: D };
  const u = attentionUniform(a);
  const g = grid(attentionGroups(a));
  const [, , o, lse] = await runKernel(dev, 'attention', [qkv, bias, new Float32Array(N * D), new Float32Array(B * H * T)], u, g);
  assertClose('attention forward', o, want.o);
  const [, , , , , scratch, dq] = await runKernel(dev, 'attentionBackwardQuery', [qkv, bias, lse, dO, o, new Float32Array(2 * B * H * T * T), new Float32Array(3 * N * D)], u, g);
  const [, , , dqkv] = await runKernel(dev, 'attentionBackwardKey', [qkv, dO, scratch, dq], u, g);
  assertClose('attention dq', dqkv.subarray(0, N * D), want.dqkv.subarray(0, N * D));
  assertClose('attention dk', dqkv.subarray(N * D, 2 * N * D), want.dqkv.subarray(N * D, 2 * N * D));
  assertClose('attention dv', dqkv.subarray(2 * N * D), want.dqkv.subarray(2 * N * D));
});

test('kernels pool / unpool (mean and first token) and L2 normalisation forward and backward', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(15);
  const [B, T, D] = [3, 5, 70];
  const x = randn(B * T * D, rng);
  const dp = randn(B * D, rng);
  for (const mode of ['mean', 'first'] as const) {
    const u = poolUniform({ batch: B, tokens: T, width: D, mode });
    const want = new Float32Array(B * D);
    const wantBack = new Float32Array(B * T * D);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < D; c++) {
        for (let t2 = 0; t2 < T; t2++) {
          if (mode === 'mean') {
            want[b * D + c] += x[(b * T + t2) * D + c] / T;
            wantBack[(b * T + t2) * D + c] = dp[b * D + c] / T;
          } else if (t2 === 0) {
            want[b * D + c] = x[b * T * D + c];
            wantBack[b * T * D + c] = dp[b * D + c];
          }
        }
      }
    }
    const [, pooled] = await runKernel(dev, 'pool', [x, new Float32Array(B * D)], u, grid(Math.ceil((B * D) / 256)));
    assertClose(`pool ${mode}`, pooled, want);
    const [, back] = await runKernel(dev, 'unpool', [dp, new Float32Array(B * T * D).fill(9)], u, grid(Math.ceil((B * T * D) / 256)));
    assertClose(`unpool ${mode}`, back, wantBack);
  }
  const z = randn(B * D, rng);
  const de = randn(B * D, rng);
  const wantE = new Float32Array(B * D);
  const wantDz = new Float32Array(B * D);
  for (let b = 0; b < B; b++) {
    const row = z.subarray(b * D, b * D + D);
    const r = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) + 1e-12);
    let dot = 0;
    for (let c = 0; c < D; c++) dot += row[c] * r * de[b * D + c];
    for (let c = 0; c < D; c++) {
      wantE[b * D + c] = row[c] * r;
      wantDz[b * D + c] = (de[b * D + c] - row[c] * r * dot) * r;
    }
  }
  const u = l2NormUniform({ rows: B, width: D });
  const [, e, rn] = await runKernel(dev, 'l2Norm', [z, new Float32Array(B * D), new Float32Array(B)], u, grid(B));
  assertClose('l2 normalisation', e, wantE);
  const [, , , dz] = await runKernel(dev, 'l2NormBackward', [de, e, rn, new Float32Array(B * D)], u, grid(B));
  assertClose('l2 normalisation gradient', dz, wantDz);
});

test('kernel contrastive: the symmetric loss, the similarity gradient and the log-scale gradient', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(16);
  const B = 20;
  const S = randn(B * B, rng);
  const prm = new Float32Array([0, 0, Math.log(1 / 0.07)]);
  const scale = Math.exp(prm[2]);
  const L = Array.from(S, (v) => v * scale);
  const rowLse = Array.from({ length: B }, (_, i) => Math.log(L.slice(i * B, i * B + B).reduce((s, v) => s + Math.exp(v), 0)));
  const colLse = Array.from({ length: B }, (_, j) => Math.log(Array.from({ length: B }, (_, i) => Math.exp(L[i * B + j])).reduce((s, v) => s + v, 0)));
  let loss = 0;
  let dls = 0;
  const dS = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    loss += rowLse[i] - L[i * B + i] + colLse[i] - L[i * B + i];
    for (let j = 0; j < B; j++) {
      const g = (Math.exp(L[i * B + j] - rowLse[i]) + Math.exp(L[i * B + j] - colLse[j]) - (i === j ? 2 : 0)) / (2 * B);
      dS[i * B + j] = g * scale;
      dls += g * L[i * B + j];
    }
  }
  const [, , , gotDS, grads, out] = await runKernel(dev, 'contrastive', [S, prm, new Float32Array(2 * B), new Float32Array(B * B), new Float32Array(3), new Float32Array(4)], contrastiveUniform({ batch: B, logScaleOff: 2 }), [1, 1, 1]);
  assertClose('contrastive loss', [out[0]], [loss / (2 * B)]);
  assertClose('contrastive dS', gotDS, dS);
  assertClose('contrastive log-scale gradient', [grads[2]], [dls]);
});

test('kernels patchPositions, tokenEmbedding and scatterRows (the embedding gradients by host-made segments)', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(17);
  const [B, K, D, L] = [2, 3, 70, 6];
  const T = K + 1;
  const x = randn(B * T * D, rng);
  const prm = randn(D + 4, rng);
  const table = randn(L * D, rng);
  const keep = new Uint32Array([5, 0, 2, 1, 4, 3]);
  const want = Float32Array.from(x);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < D; c++) want[b * T * D + c] += prm[4 + c];
    for (let j = 0; j < K; j++) for (let c = 0; c < D; c++) want[(b * T + 1 + j) * D + c] += table[keep[b * K + j] * D + c];
  }
  const [got] = await runKernel(dev, 'patchPositions', [x, prm, table, keep], patchPositionsUniform({ rows: B * T, width: D, tokens: T, clsOff: 4 }), grid(Math.ceil((B * T * D) / 256)));
  assertClose('patchPositions', got, want);

  const V = 7;
  const ids = new Int32Array([1, 4, 4, 0, 1, 6, 4, 2]);
  const pos = new Int32Array([0, 1, 3, 2, 0, 1, 2, 3]);
  const rows = ids.length;
  const tp = randn(V * D + 4 * D, rng);
  const wantX = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) for (let c = 0; c < D; c++) wantX[r * D + c] = tp[ids[r] * D + c] + tp[V * D + pos[r] * D + c];
  const [, , , emb] = await runKernel(dev, 'tokenEmbedding', [tp, new Uint32Array(ids), new Uint32Array(pos), new Float32Array(rows * D)], tokenEmbeddingUniform({ rows, width: D, tokensOff: 0, positionsOff: V * D }), grid(Math.ceil((rows * D) / 256)));
  assertClose('tokenEmbedding', emb, wantX);

  const seg = new Uint32Array(segmentWords(rows));
  segments(ids, seg);
  assert.equal(seg[0], 5, 'five distinct ids');
  const dx = randn(rows * D, rng);
  const wantG = new Float32Array(V * D + 3).fill(7); // rows no id names keep their value (the engine zeroes them first)
  for (const id of new Set(ids)) wantG.fill(0, 3 + id * D, 3 + id * D + D);
  for (let r = 0; r < rows; r++) for (let c = 0; c < D; c++) wantG[3 + ids[r] * D + c] += dx[r * D + c];
  const [, , g] = await runKernel(dev, 'scatterRows', [dx, seg, new Float32Array(V * D + 3).fill(7)], scatterRowsUniform({ rows, width: D, outOff: 3 }), grid(rows));
  assertClose('scatterRows', g, wantG);
});

test('kernels decoderInput (encoder rows or the mask token, plus positions) and patchLoss (MSE on removed patches)', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(19);
  const [rows, D, T, encRows] = [10, 70, 5, 6];
  const z = randn(encRows * D, rng);
  const prm = randn(D + 2, rng);
  const pos = randn(T * D, rng);
  const src = new Uint32Array([0, 6, 1, 6, 2, 3, 4, 6, 6, 5]); // 6: the mask token
  const want = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) for (let c = 0; c < D; c++) want[r * D + c] = (src[r] === encRows ? prm[2 + c] : z[src[r] * D + c]) + pos[(r % T) * D + c];
  const [, , , , x] = await runKernel(dev, 'decoderInput', [z, prm, pos, src, new Float32Array(rows * D)], decoderInputUniform({ rows, width: D, tokens: T, maskRow: encRows, maskOff: 2 }), grid(Math.ceil((rows * D) / 256)));
  assertClose('decoderInput', x, want);

  const PV = 12;
  const pred = randn(rows * PV, rng);
  const goal = randn(rows * PV, rng);
  const weight = Float32Array.from(src, (v) => (v === encRows ? 1 : 0));
  const removed = weight.reduce((a, b) => a + b, 0);
  let loss = 0;
  const dPred = new Float32Array(rows * PV);
  for (let r = 0; r < rows; r++) {
    let e = 0;
    for (let c = 0; c < PV; c++) {
      const d = pred[r * PV + c] - goal[r * PV + c];
      e += (d * d) / PV;
      dPred[r * PV + c] = (0.5 * weight[r] * 2 * d) / (PV * removed);
    }
    loss += (weight[r] * e) / removed;
  }
  const out = new Float32Array([1.25, 0, 0, 0]); // the contrastive loss is there already
  const [, , , gotD, gotOut] = await runKernel(dev, 'patchLoss', [pred, goal, weight, new Float32Array(rows * PV), out], patchLossUniform({ rows, patchValues: PV, weight: 0.5 }), [1, 1, 1]);
  assertClose('patchLoss gradient', gotD, dPred);
  assertClose('patchLoss loss', [gotOut[2], gotOut[0]], [loss, 1.25 + 0.5 * loss]);
});

test('kernel adamw: the optimizer step of models/optimizer.ts with decay on the first part, a skipped range, and the logit-scale clamp', async (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const rng = makeRng(18);
  const n = 600;
  const p = randn(n, rng);
  p[n - 1] = 4.9; // the log scale, pushed past log 100 by the step
  const g = randn(n, rng);
  g[n - 1] = -1;
  const m = randn(n, rng, 0.1);
  const v = Float32Array.from(randn(n, rng, 0.1), Math.abs);
  const a = { size: n, decayEnd: 400, logScaleOff: n - 1, skipStart: 350, skipEnd: 420, lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2, c1: 1 / (1 - 0.9 ** 3), c2: 1 / (1 - 0.95 ** 3), vFloor: 1e-30, logScaleMax: Math.log(100) };
  const want = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const mi = a.beta1 * m[i] + (1 - a.beta1) * g[i];
    const vi = a.beta2 * v[i] + (1 - a.beta2) * g[i] * g[i] + a.vFloor;
    want[i] = p[i] - a.lr * ((mi * a.c1) / (Math.sqrt(vi * a.c2) + a.eps) + (i < a.decayEnd ? a.weightDecay : 0) * p[i]);
  }
  want[n - 1] = Math.min(Math.max(want[n - 1], 0), Math.log(100));
  want.set(p.subarray(a.skipStart, a.skipEnd), a.skipStart); // a skipped range keeps its values
  const [got, , , , out] = await runKernel(dev, 'adamw', [p, g, m, v, new Float32Array(4)], adamwUniform(a), grid(Math.ceil(n / 256)));
  assertClose('adamw', got, want);
  assert.equal(out[1], got[n - 1], 'the clamped log scale goes to out[1]');
  assert.ok(Math.abs(got[n - 1] - Math.log(100)) < 1e-6, `clamped to log 100: ${got[n - 1]}`);
});

// ---- Whole steps against the autodiff engine ----

const tinyConfig = (over: object = {}): TrainConfig =>
  resolveConfig({ model: { preset: 'tiny', text: { context_length: 12 } }, data: { image_size: 16 }, train: { batch_size: 6, warmup: 0 }, ...over });

/** A batch of random images and captions of different lengths (so padding is masked), built as the trainer does. */
function batchFor(config: TrainConfig, model: FlipModel, seed: number) {
  const rng = makeRng(seed);
  const s = config.data.image_size;
  const ctx = config.model.text.context_length;
  const examples = Array.from({ length: config.train.batch_size }, () => ({ image: Float32Array.from({ length: s * s * 3 }, () => rng()), caption: '', label: 0 }));
  const ids = Array.from({ length: config.train.batch_size }, (_, b) => {
    const row = new Int32Array(ctx); // pad 0, start 1, end 2
    row[0] = 1;
    const words = 2 + (b % (ctx - 3));
    for (let i = 1; i <= words; i++) row[i] = 3 + Math.floor(rng() * 40);
    row[words + 1] = 2;
    return row;
  });
  return buildTrainBatch(config, examples, ids, model, makeRng(seed + 1));
}

/** One step's loss, reconstruction loss and gradients (by parameter name) from an engine. */
async function stepOf(engine: Engine, config: TrainConfig, seed: number): Promise<{ loss: number; rec: number; grads: Map<string, Float32Array> }> {
  engine.lossAndGradients(batchFor(config, engine.model, seed));
  const grads = await engine.readGradients();
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
  const { out } = engine.update(opt, 0);
  const [loss, , rec] = await out.data();
  out.dispose();
  opt.dispose();
  return { loss, rec, grads: new Map(engine.model.store.params.map((p, i) => [p.name, grads[i]])) };
}

/** The reference on tfjs's cpu backend; the backend is webgpu again after. */
async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return await fn();
  } finally {
    await tf.setBackend('webgpu');
  }
}

async function compareStep(t: { diagnostic(msg: string): void }, what: string, config: TrainConfig, splitRows?: number): Promise<void> {
  const want = await onCpu(async () => {
    const model = new FlipModel(config, 50, 0, plainLayerOps);
    try {
      return await stepOf(new AutodiffEngine(model, null), config, 5);
    } finally {
      model.dispose();
    }
  });
  const model = new FlipModel(config, 50, 0, plainLayerOps);
  const engine = new WebGpuEngine(model, tfWebgpuBackend()!, { splitRows });
  try {
    const got = await stepOf(engine, config, 5);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * want.loss, `${what}: loss ${got.loss}, autodiff ${want.loss}`);
    assert.ok(Math.abs(got.rec - want.rec) <= 1e-5 * Math.max(want.rec, 1e-3), `${what}: reconstruction loss ${got.rec}, autodiff ${want.rec}`);
    // Relative to each gradient's largest entry, but not below 1e-3 of the largest gradient entry of the model: the
    // key biases' true gradient is zero (softmax ignores a shift of a whole score row), so both sides are noise there.
    const floor = 1e-3 * Math.max(...[...want.grads.values()].map((w) => w.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    let worst = { name: '', err: 0 };
    for (const [name, w] of want.grads) {
      const g = got.grads.get(name)!;
      let num = 0;
      let den = floor;
      for (let i = 0; i < w.length; i++) {
        num = Math.max(num, Math.abs(g[i] - w[i]));
        den = Math.max(den, Math.abs(w[i]));
      }
      if (num / den > worst.err) worst = { name, err: num / den };
    }
    t.diagnostic(`${what}: loss ${got.loss} (autodiff ${want.loss}), reconstruction ${got.rec}; largest gradient difference ${worst.name} ${worst.err.toExponential(2)}`);
    assert.ok(worst.err <= 1e-4, `${what}: largest gradient difference ${worst.name} ${worst.err.toExponential(2)}`);
  } finally {
    engine.dispose();
    model.dispose();
  }
}

test('one step: loss and every parameter gradient as the autodiff engine, at image mask 0.5', { timeout: 60_000 }, async (t) => {
  if (!gpu(t)) return;
  await compareStep(t, 'mask 0.5', tinyConfig({ mask: { image_ratio: 0.5 } }));
});

test('one step with text masking (kept tokens keep their positions) and towers of different widths', { timeout: 60_000 }, async (t) => {
  if (!gpu(t)) return;
  // Reductions over the batch's rows in chunks of 16 rows (several chunks at these shapes).
  await compareStep(t, 'text mask 0.5, text width 32, 16-row chunks', tinyConfig({ mask: { text_ratio: 0.5, text_strategy: 'random' }, model: { preset: 'tiny', text: { context_length: 12, width: 32, heads: 1 } } }), 16);
});

test('one step with the MAE decoder: the reconstruction loss, the decoder and encoder gradients as the autodiff engine', { timeout: 60_000 }, async (t) => {
  if (!gpu(t)) return;
  await compareStep(t, 'MAE decoder, mask 0.75, 16-row chunks', tinyConfig({ mask: { image_ratio: 0.75 }, loss: { reconstruction_weight: 0.5 } }), 16);
});

test('the MAE decoder at mask 0 (nothing removed): no reconstruction loss, and AdamW leaves the decoder as the other engines do', { timeout: 60_000 }, async (t) => {
  if (!gpu(t)) return;
  const config = tinyConfig({ loss: { reconstruction_weight: 0.5 } });
  await compareStep(t, 'MAE decoder, mask 0', config);
  const model = new FlipModel(config, 50, 0, plainLayerOps);
  const engine = new WebGpuEngine(model, tfWebgpuBackend()!);
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.2 });
  try {
    const before = await Promise.all(model.store.params.map((p) => p.variable.data()));
    engine.lossAndGradients(batchFor(config, model, 2));
    const { out } = engine.update(opt, 1e-2);
    assert.equal((await out.data())[2], 0, 'no reconstruction loss without removed patches');
    out.dispose();
    engine.syncModel();
    const after = await Promise.all(model.store.params.map((p) => p.variable.data()));
    model.store.params.forEach((p, i) => {
      const moved = relErr(after[i], before[i]) > 0;
      assert.equal(moved, !p.name.startsWith('decoder.'), `${p.name} ${moved ? 'moved' : 'stayed'}`);
    });
  } finally {
    opt.dispose();
    engine.dispose();
    model.dispose();
  }
});

test('20 training steps through train(): the final loss within 1% of the CPU run with the same seed; evaluation and checkpoints see the trained weights', { timeout: 120_000 }, async (t) => {
  if (!gpu(t)) return;
  const { train } = await import('../models/train.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const run = async (backend: 'webgpu' | 'wasm', checkpointDir?: string) => {
    const config = resolveConfig({
      backend,
      seed: 3,
      model: { preset: 'tiny', text: { context_length: 12 } },
      data: { train_size: 48, eval_size: 16, image_size: 16 },
      train: { steps: 20, batch_size: 8 },
      mask: { image_ratio: 0.5 },
    });
    const logs: string[] = [];
    const losses: number[] = [];
    const result = await train(config, { onLog: (m) => logs.push(m), onStep: (_s, m) => losses.push(m.loss) }, { checkpointDir });
    return { result, logs, losses };
  };
  const dir = mkdtempSync(join(tmpdir(), 'flip-webgpu-'));
  const software = process.env.FLIP_WEBGPU_SOFTWARE;
  process.env.FLIP_WEBGPU_SOFTWARE = '1'; // the software adapter, on a CPU-only machine
  try {
    const t0 = performance.now();
    const gpuRun = await run('webgpu', dir);
    const gpuSeconds = (performance.now() - t0) / 1000;
    const cpuRun = await run('wasm');
    await tf.setBackend('webgpu');
    assert.ok(gpuRun.logs.some((l) => l.startsWith('engine: webgpu')), gpuRun.logs.join('\n'));
    const [g, c] = [gpuRun.result.results.final_loss, cpuRun.result.results.final_loss];
    t.diagnostic(`final loss webgpu ${g}, cpu ${c} (${cpuRun.logs.find((l) => l.startsWith('engine:'))}); webgpu run ${gpuSeconds.toFixed(1)} s`);
    assert.equal(gpuRun.losses.length, 20);
    assert.ok(gpuRun.losses[19] < gpuRun.losses[0], `the loss falls: ${gpuRun.losses[0]} -> ${gpuRun.losses[19]}`);
    assert.ok(Math.abs(g - c) <= 0.01 * c, `final loss ${g} vs the CPU run's ${c}`);
    // Evaluation ran on the synced weights: the same zero-shot numbers as the CPU run's weights give, near enough.
    const [ge, ce] = [gpuRun.result.results.zero_shot_top1, cpuRun.result.results.zero_shot_top1];
    assert.ok(Number.isFinite(ge) && Math.abs(ge - ce) <= 1 / 16 + 1e-9, `zero-shot top-1 ${ge} vs ${ce}`);
    assert.ok(gpuRun.result.artifacts?.pretrain, 'a checkpoint was written');
  } finally {
    if (software === undefined) delete process.env.FLIP_WEBGPU_SOFTWARE;
    else process.env.FLIP_WEBGPU_SOFTWARE = software;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the call budget: after the first step, one step (out.data() included) makes <= 400 dispatches, <= 2 submits, no buffers', { timeout: 60_000 }, async (t) => {
  if (!gpu(t)) return;
  const { countGpuCalls } = await import('../models/engine/webgpu/call-counter.js');
  const config = tinyConfig({ mask: { image_ratio: 0.5 } });
  const model = new FlipModel(config, 50, 0, plainLayerOps);
  const engine = new WebGpuEngine(model, tfWebgpuBackend()!);
  const opt = engine.createOptimizer({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const step = async (seed: number) => {
    engine.lossAndGradients(batchFor(config, model, seed));
    const { out } = engine.update(opt, 1e-3);
    const v = await out.data();
    out.dispose();
    assert.equal(v.length, 3, 'loss, log scale, reconstruction');
    assert.ok(Number.isFinite(v[0]) && v[1] > 0 && v[2] === 0, `step output ${v}`);
  };
  try {
    await step(1);
    const counts = await countGpuCalls(async () => {
      await step(2);
      await step(3);
    });
    assert.ok(counts, 'counted on the webgpu backend');
    const per = { dispatches: counts.dispatches / 2, submits: counts.submits / 2, buffers_created: counts.buffers_created / 2 };
    t.diagnostic(`per step: ${JSON.stringify(per)}; the plan records ${engine.dispatchesPerStep}`);
    assert.equal(per.dispatches, engine.dispatchesPerStep, 'every dispatch is the plan\'s');
    assert.ok(per.dispatches <= 400, `${per.dispatches} dispatches`);
    assert.ok(per.submits <= 2, `${per.submits} submits`);
    assert.equal(per.buffers_created, 0);
  } finally {
    opt.dispose();
    engine.dispose();
    model.dispose();
  }
  // The count grows with depth only (25 dispatches a block): the medium preset (6 + 6 blocks) at a small batch and
  // image size has the dispatch list of medium at batch 256.
  const medium = tinyConfig({ model: { preset: 'medium', text: { context_length: 12 } }, train: { batch_size: 2, warmup: 0 } });
  const mediumModel = new FlipModel(medium, 50, 0, plainLayerOps);
  const mediumEngine = new WebGpuEngine(mediumModel, tfWebgpuBackend()!);
  try {
    mediumEngine.lossAndGradients(batchFor(medium, mediumModel, 1));
    t.diagnostic(`medium: ${mediumEngine.dispatchesPerStep} dispatches per step`);
    assert.ok(mediumEngine.dispatchesPerStep <= 400, `medium: ${mediumEngine.dispatchesPerStep} dispatches`);
  } finally {
    mediumEngine.dispose();
    mediumModel.dispose();
  }
});

test('selection: backend webgpu gets the WebGPU engine; a sequence too long for it falls back to autodiff with the reason, or fails under FLIP_ENGINE=webgpu', async (t) => {
  if (!gpu(t)) return;
  const { buildModel } = await import('../models/engine/select.js');
  delete process.env.FLIP_ENGINE;
  const logs: string[] = [];
  const plain = buildModel(tinyConfig({ loss: { reconstruction_weight: 0.5 } }), 50, 0);
  const long = buildModel(tinyConfig({ data: { image_size: 132 } }), 50, 0); // 33 x 33 patches + CLS
  try {
    const e = createEngine(plain, (m) => logs.push(m));
    assert.equal(e.name, 'webgpu');
    (e as WebGpuEngine).dispose();
    assert.match(logs[0], /^engine: webgpu \(/);
    const f = createEngine(long, (m) => logs.push(m));
    assert.equal(f.name, 'autodiff');
    assert.match(logs[1], /^engine: autodiff .*a sequence of 1090 tokens/);
    process.env.FLIP_ENGINE = 'webgpu';
    assert.throws(() => createEngine(long), /FLIP_ENGINE=webgpu: the WebGPU engine cannot train this model: a sequence of 1090 tokens/);
    await tf.setBackend('cpu');
    const onCpuModel = buildModel(tinyConfig(), 50, 0);
    try {
      assert.throws(() => createEngine(onCpuModel), /FLIP_ENGINE=webgpu: .*the backend is 'cpu', not webgpu/);
    } finally {
      onCpuModel.dispose();
    }
  } finally {
    delete process.env.FLIP_ENGINE;
    await tf.setBackend('webgpu');
    plain.dispose();
    long.dispose();
  }
});
