/**
 * Loads the optional native add-on (native/, built by `npm install` when a CBLAS such as Debian's libopenblas-dev is
 * present; see native/build.mjs). Never throws: when the add-on is absent, disabled or broken, the reason is returned
 * and the trainer keeps the wasm kernels.
 *
 * FLIP_NATIVE_KERNELS=0 turns it off (the plain implementation, for comparisons). FLIP_NATIVE_THREADS sets how many
 * threads the kernels use (default: the CPUs this process may use); the sweep's local executor divides the CPUs
 * between the jobs it runs at once. OpenBLAS itself always runs single-threaded (native/src/parallel.h says why).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type F32 = Float32Array;

/** The add-on's functions (native/src/addon.cc); all work in place on the views given. */
export interface NativeAddon {
  gemm(a: F32, b: F32, c: F32, batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean, strideA: number, strideB: number, strideC: number, accumulate: boolean): void;
  linearForward(x: F32, w: F32, bias: F32 | null, out: F32, n: number, din: number, dout: number): void;
  columnSums(x: F32, sums: F32, n: number, d: number): void;
  layerNormForward(x: F32, gamma: F32, beta: F32, eps: number, y: F32, xhat: F32, rstd: F32, n: number, d: number): void;
  layerNormBackward(dy: F32, xhat: F32, rstd: F32, gamma: F32, dx: F32, dgamma: F32, dbeta: F32, n: number, d: number): void;
  /** Every parameter tensor's AdamW update in one call; weightDecay: one value per tensor; out[i] may be p[i] (in place). */
  adamwStep(p: F32[], g: F32[], m: F32[], v: F32[], out: F32[], weightDecay: F32, lr: number, beta1: number, beta2: number, eps: number, c1: number, c2: number, vFloor: number): void;
  /** weights: lnGamma, lnBeta, wq, bq, wk, bk, wv, bv, wo, bo; saved: xhat, rstd, q, k, v, probs, ctx. */
  attentionSublayerForward(h: F32, weights: F32[], keyBias: F32 | null, out: F32, saved: F32[], batch: number, tokens: number, heads: number, headDim: number, scale: number, eps: number): void;
  /** grads: dh, then one per weight in the weights' order. */
  attentionSublayerBackward(dy: F32, weights: F32[], saved: F32[], grads: F32[], batch: number, tokens: number, heads: number, headDim: number, scale: number): void;
  /** weights: lnGamma, lnBeta, w1, b1, w2, b2; saved: xhat, rstd, u, z. */
  mlpSublayerForward(h: F32, weights: F32[], out: F32, saved: F32[], n: number, d: number, m: number, eps: number): void;
  mlpSublayerBackward(dy: F32, weights: F32[], saved: F32[], grads: F32[], n: number, d: number, m: number): void;
  /** Two (or one) transformer stacks side by side; the argument's layout is built by stacks.ts. */
  stacksForward(stacks: object[], halves: boolean): void;
  stacksBackward(stacks: object[], halves: boolean): void;
  /** The CLIP head (native/src/clip_head.cc): weights lnGammaA, lnBetaA, projA, lnGammaB, lnBetaB, projB; h both towers' rows packed. */
  clipHeadSavedFloats(batch: number, tokensA: number, tokensB: number, meanA: boolean, meanB: boolean, width: number, embed: number): number;
  /** Returns the loss. */
  clipHeadForward(h: F32, weights: F32[], logScale: number, saved: F32, batch: number, tokensA: number, tokensB: number, meanA: boolean, meanB: boolean, width: number, embed: number, eps: number): number;
  /** Writes dh and the weights' gradients (same order); returns the log scale's gradient. */
  clipHeadBackward(upstream: number, weights: F32[], saved: F32, dh: F32, grads: F32[], batch: number, tokensA: number, tokensB: number, meanA: boolean, meanB: boolean, width: number, embed: number): number;
  /** The towers' inputs (native/src/embeddings.cc); index arrays are checked against their ranges. */
  patchEmbeddingForward(pixels: F32, keep: Int32Array, w: F32, bias: F32, cls: F32, positions: F32, out: F32, batch: number, tokens: number, pixelValues: number, width: number, patches: number): void;
  patchEmbeddingBackward(pixels: F32, dout: F32, dw: F32, dbias: F32, dcls: F32, batch: number, tokens: number, pixelValues: number, width: number): void;
  tokenEmbeddingForward(ids: Int32Array, positions: Int32Array, table: F32, positionTable: F32, out: F32, rows: number, vocab: number, context: number, width: number): void;
  tokenEmbeddingBackward(ids: Int32Array, positions: Int32Array, dout: F32, dtable: F32, dpositions: F32, rows: number, vocab: number, context: number, width: number): void;
  /** Bytes held by the sublayer kernels' scratch buffers (grow-only, reused every step). */
  scratchBytes(): number;
  /** Frees the scratch buffers (memory measurements of several model sizes in one process). */
  releaseScratch(): void;
  info(): { config: string; core: string; threads: number };
  setThreads(n: number): void;
}

export type AddonLoad = { addon: NativeAddon; reason?: undefined } | { addon: null; reason: string };

const here = path.dirname(fileURLToPath(import.meta.url));
/**
 * Where node-gyp puts the build: native/build/Release under the repository root. FLIP_NATIVE_ADDON names another file
 * (the GPU-machine bundle of scripts/gpu ships the add-on beside the bundled trainer).
 */
export const ADDON_PATH = process.env.FLIP_NATIVE_ADDON || path.resolve(here, '../../../native/build/Release/flip_kernels.node');

let cached: AddonLoad | null = null;

export function loadNativeAddon(): AddonLoad {
  if (cached) return cached;
  cached = load();
  return cached;
}

function load(): AddonLoad {
  if (process.env.FLIP_NATIVE_KERNELS === '0') return { addon: null, reason: 'turned off by FLIP_NATIVE_KERNELS=0' };
  if (!existsSync(ADDON_PATH)) {
    return { addon: null, reason: `not built (no ${path.relative(process.cwd(), ADDON_PATH)}; install libopenblas-dev, then npm run build:native)` };
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    const requested = process.env.FLIP_NATIVE_THREADS;
    const n = requested === undefined || requested === '' ? Math.min(os.availableParallelism(), 64) : Number(requested);
    if (!Number.isInteger(n) || n < 1 || n > 64) return { addon: null, reason: `FLIP_NATIVE_THREADS must be an integer from 1 to 64, got "${requested}"` };
    addon.setThreads(n);
    return { addon };
  } catch (e) {
    return { addon: null, reason: `failed to load ${ADDON_PATH}: ${(e as Error).message}` };
  }
}
