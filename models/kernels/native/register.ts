/**
 * Registers the native kernels on the wasm backend: BatchMatMul (every tf.matMul, transposes and batch broadcasting
 * included) on OpenBLAS, and the fused kernels that models/kernels/native/ops.ts builds the layers from. The original
 * BatchMatMul is kept for the cases handled here (non-float32, batch shapes that broadcast both ways) and restored by
 * unregisterNativeKernels, which tests use to compare against the plain implementation.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, type NativeAddon } from './addon.js';
import { allocate, isWasmHeapBackend, view, type WasmBackendInternals } from './wasm-heap.js';

export const KERNELS = {
  linear: 'FlipNativeLinear',
  columnSums: 'FlipNativeColumnSums',
  layerNorm: 'FlipNativeLayerNorm',
  layerNormGrad: 'FlipNativeLayerNormGrad',
  attentionSublayer: 'FlipNativeAttentionSublayer',
  attentionSublayerGrad: 'FlipNativeAttentionSublayerGrad',
  mlpSublayer: 'FlipNativeMlpSublayer',
  mlpSublayerGrad: 'FlipNativeMlpSublayerGrad',
} as const;

/** Input names of the sublayer kernels' weights, in the add-on's order. */
export const ATTENTION_WEIGHTS = ['lnGamma', 'lnBeta', 'wq', 'bq', 'wk', 'bk', 'wv', 'bv', 'wo', 'bo'] as const;
export const ATTENTION_SAVED = ['xhat', 'rstd', 'q', 'k', 'v', 'probs', 'ctx'] as const;
export const MLP_WEIGHTS = ['lnGamma', 'lnBeta', 'w1', 'b1', 'w2', 'b2'] as const;
export const MLP_SAVED = ['xhat', 'rstd', 'u', 'z'] as const;

/** Shapes of the attention sublayer's saved tensors (ATTENTION_SAVED order) for n = batch * tokens rows of width d. */
export function attentionSavedShapes(batch: number, tokens: number, heads: number, d: number): number[][] {
  const n = batch * tokens;
  return [[n, d], [n], [n, d], [n, d], [n, d], [batch, heads, tokens, tokens], [n, d]];
}

/** Shapes of the MLP sublayer's saved tensors (MLP_SAVED order), hidden width m. */
export function mlpSavedShapes(n: number, d: number, m: number): number[][] {
  return [[n, d], [n], [n, m], [n, m]];
}

export interface NativeStatus {
  active: boolean;
  /** e.g. "OpenBLAS 0.3.21 Haswell, 1 thread", or why the native kernels are not in use. */
  description: string;
}

let originalBatchMatMul: tf.KernelConfig | null = null;
let active = false;

/** Whether the layers should use the native ops: registered, and wasm is the backend in use. */
export function nativeKernelsActive(): boolean {
  return active && tf.getBackend() === 'wasm';
}

function product(xs: number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function batchMatMul(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { inputs, attrs, backend } = args;
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const be = backend as unknown as WasmBackendInternals;
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const [ga, gb] = [product(batchA), product(batchB)];
    // One side's batch broadcasts (size 1) or both are the same; anything else goes to the original kernel.
    const outBatch = ga === 1 ? batchB : gb === 1 || sameShape(batchA, batchB) ? batchA : null;
    if (outBatch === null || a.dtype !== 'float32' || b.dtype !== 'float32' || (ga !== 1 && gb !== 1 && ga !== gb)) {
      return originalBatchMatMul!.kernelFunc(args);
    }
    const [ar, ac] = a.shape.slice(-2);
    const [br, bc] = b.shape.slice(-2);
    const [m, k] = transposeA ? [ac, ar] : [ar, ac];
    const [kb, n] = transposeB ? [bc, br] : [br, bc];
    if (k !== kb) throw new Error(`matMul: inner dimensions differ, [${a.shape}]${transposeA ? 'ᵀ' : ''} x [${b.shape}]${transposeB ? 'ᵀ' : ''}`);
    const g = Math.max(ga, gb);
    const [out] = allocate(be, [[...outBatch, m, n]]);
    if (g * m * n === 0) return out;
    addon.gemm(view(be, a, 'a'), view(be, b, 'b'), view(be, out, 'out'), g, m, n, k, transposeA, transposeB, ga === 1 ? 0 : m * k, gb === 1 ? 0 : k * n, m * n, false);
    return out;
  };
}

type Inputs = Record<string, tf.TensorInfo | undefined>;

function fused(addon: NativeAddon): Record<string, tf.KernelFunc> {
  return {
    [KERNELS.linear]: ({ inputs, backend }) => {
      const { x, w, bias } = inputs as Inputs as { x: tf.TensorInfo; w: tf.TensorInfo; bias?: tf.TensorInfo };
      const be = backend as unknown as WasmBackendInternals;
      const [n, din] = x.shape;
      const dout = w.shape[1];
      const [out] = allocate(be, [[n, dout]]);
      addon.linearForward(view(be, x, 'x'), view(be, w, 'w'), bias ? view(be, bias, 'bias') : null, view(be, out, 'out'), n, din, dout);
      return out;
    },
    [KERNELS.columnSums]: ({ inputs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const be = backend as unknown as WasmBackendInternals;
      const [n, d] = x.shape;
      const [sums] = allocate(be, [[d]]);
      addon.columnSums(view(be, x, 'x'), view(be, sums, 'sums'), n, d);
      return sums;
    },
    [KERNELS.layerNorm]: ({ inputs, attrs, backend }) => {
      const { x, gamma, beta } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
      const be = backend as unknown as WasmBackendInternals;
      const [n, d] = x.shape;
      const outs = allocate(be, [[n, d], [n, d], [n]]);
      const [y, xhat, rstd] = outs.map((o) => view(be, o, 'output'));
      addon.layerNormForward(view(be, x, 'x'), view(be, gamma, 'gamma'), view(be, beta, 'beta'), (attrs as { eps: number }).eps, y, xhat, rstd, n, d);
      return outs;
    },
    [KERNELS.layerNormGrad]: ({ inputs, backend }) => {
      const { dy, xhat, rstd, gamma } = inputs as Record<string, tf.TensorInfo>;
      const be = backend as unknown as WasmBackendInternals;
      const [n, d] = dy.shape;
      const outs = allocate(be, [[n, d], [d], [d]]);
      const [dx, dgamma, dbeta] = outs.map((o) => view(be, o, 'output'));
      addon.layerNormBackward(view(be, dy, 'dy'), view(be, xhat, 'xhat'), view(be, rstd, 'rstd'), view(be, gamma, 'gamma'), dx, dgamma, dbeta, n, d);
      return outs;
    },
  };
}

/** The sublayer kernels: one call each way per half block (native/src/sublayers.cc). */
function sublayers(addon: NativeAddon): Record<string, tf.KernelFunc> {
  type AttentionAttrs = { batch: number; tokens: number; heads: number; scale: number; eps: number };
  const group = (be: WasmBackendInternals, inputs: Inputs, names: readonly string[]) => names.map((n) => view(be, inputs[n]!, n));
  return {
    [KERNELS.attentionSublayer]: ({ inputs, attrs, backend }) => {
      const ins = inputs as Inputs;
      const { batch, tokens, heads, scale, eps } = attrs as unknown as AttentionAttrs;
      const be = backend as unknown as WasmBackendInternals;
      const h = ins.h!;
      const [n, d] = h.shape;
      // out, then the saved tensors in ATTENTION_SAVED order.
      const outs = allocate(be, [[n, d], ...attentionSavedShapes(batch, tokens, heads, d)]);
      const [out, ...saved] = outs.map((o) => view(be, o, 'output'));
      const keyBias = ins.keyBias ? view(be, ins.keyBias, 'keyBias') : null;
      addon.attentionSublayerForward(view(be, h, 'h'), group(be, ins, ATTENTION_WEIGHTS), keyBias, out, saved, batch, tokens, heads, d / heads, scale, eps);
      return outs;
    },
    [KERNELS.attentionSublayerGrad]: ({ inputs, attrs, backend }) => {
      const ins = inputs as Inputs;
      const { batch, tokens, heads, scale } = attrs as unknown as AttentionAttrs;
      const be = backend as unknown as WasmBackendInternals;
      const dy = ins.dy!;
      const d = dy.shape[1];
      const outs = allocate(be, [dy.shape, ...ATTENTION_WEIGHTS.map((w) => ins[w]!.shape)]);
      const grads = outs.map((o) => view(be, o, 'gradient'));
      addon.attentionSublayerBackward(view(be, dy, 'dy'), group(be, ins, ATTENTION_WEIGHTS), group(be, ins, ATTENTION_SAVED), grads, batch, tokens, heads, d / heads, scale);
      return outs;
    },
    [KERNELS.mlpSublayer]: ({ inputs, attrs, backend }) => {
      const ins = inputs as Inputs;
      const be = backend as unknown as WasmBackendInternals;
      const h = ins.h!;
      const [n, d] = h.shape;
      const m = ins.w1!.shape[1];
      const outs = allocate(be, [[n, d], ...mlpSavedShapes(n, d, m)]);
      const [out, ...saved] = outs.map((o) => view(be, o, 'output'));
      addon.mlpSublayerForward(view(be, h, 'h'), group(be, ins, MLP_WEIGHTS), out, saved, n, d, m, (attrs as { eps: number }).eps);
      return outs;
    },
    [KERNELS.mlpSublayerGrad]: ({ inputs, backend }) => {
      const ins = inputs as Inputs;
      const be = backend as unknown as WasmBackendInternals;
      const dy = ins.dy!;
      const [n, d] = dy.shape;
      const m = ins.w1!.shape[1];
      const outs = allocate(be, [dy.shape, ...MLP_WEIGHTS.map((w) => ins[w]!.shape)]);
      const grads = outs.map((o) => view(be, o, 'gradient'));
      addon.mlpSublayerBackward(view(be, dy, 'dy'), group(be, ins, MLP_WEIGHTS), group(be, ins, MLP_SAVED), grads, n, d, m);
      return outs;
    },
  };
}

function replaceKernel(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/** Call after tf.setBackend('wasm'). Never throws: an unavailable add-on leaves the wasm kernels in place. */
export function registerNativeKernels(): NativeStatus {
  const load = loadNativeAddon();
  if (!load.addon) return { active: false, description: `native kernels off: ${load.reason}` };
  if (tf.getBackend() !== 'wasm' || !isWasmHeapBackend(tf.backend())) {
    return { active: false, description: 'native kernels off: they work on the wasm backend only' };
  }
  const addon = load.addon;
  if (!originalBatchMatMul) {
    const original = tf.getKernel('BatchMatMul', 'wasm');
    if (!original) return { active: false, description: 'native kernels off: the wasm backend has no BatchMatMul kernel to wrap' };
    originalBatchMatMul = original;
  }
  replaceKernel('BatchMatMul', batchMatMul(addon));
  for (const [name, fn] of Object.entries({ ...fused(addon), ...sublayers(addon) })) replaceKernel(name, fn);
  active = true;
  const info = addon.info();
  const version = /OpenBLAS [\d.]+/.exec(info.config)?.[0] ?? info.config;
  return { active: true, description: `native kernels: ${version} ${info.core}, ${info.threads} thread${info.threads === 1 ? '' : 's'}` };
}

/** Memory the native kernels hold outside tfjs's tensors (their scratch buffers), for peak-memory figures; 0 when off. */
export function nativeScratchBytes(): number {
  return nativeKernelsActive() ? (loadNativeAddon().addon?.scratchBytes() ?? 0) : 0;
}

/** Back to the plain wasm implementation (the original BatchMatMul; the layers stop using the fused ops). */
export function unregisterNativeKernels(): void {
  if (originalBatchMatMul) {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(originalBatchMatMul);
  }
  active = false;
}
