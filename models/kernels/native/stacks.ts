/**
 * Two transformer stacks (the image and the text tower's blocks) in one native call each way (native/src/stacks.cc),
 * split between two threads, each running whole products on its own: when the stacks are about the same size (image
 * mask 0.75: 1,088 rows against the captions' 1,024) each stack goes to one thread; otherwise each stack's samples are
 * cut in two halves, one thread taking the first half of both stacks (equal work whatever the sizes). The forward
 * kernel returns both outputs packed in one tensor (customGrad has one value; the CLIP head reads it as it is) plus every sublayer's saved tensors in
 * one buffer (savedLayout); the gradient kernel runs both stacks' backward passes and adds the halves' weight gradients
 * in a fixed order, so the result is the same bit for bit with one thread or two. Compared with the plain
 * implementation by test/native-kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { BlockParams } from '../../nn/block.js';
import { loadNativeAddon } from './addon.js';
import { checkKeyBias } from './ops.js';
import { ATTENTION_SAVED, ATTENTION_WEIGHTS, attentionSavedShapes, MLP_SAVED, MLP_WEIGHTS, mlpSavedShapes } from './register.js';
import { runSavedBufferOp } from './saved-buffer-op.js';
import { allocate, release, view, type WasmBackendInternals } from './wasm-heap.js';

export interface StackInput {
  blocks: BlockParams[];
  /** [batch * tokens, width] */
  h: tf.Tensor2D;
  batch: number;
  tokens: number;
  /** batch * tokens additive key bias (padding), or null */
  keyBias: tf.Tensor | null;
}

export interface StackSpec {
  batch: number;
  tokens: number;
  heads: number;
  width: number;
  eps: number;
  hidden: number[];
  hasKeyBias: boolean;
}

/** The weights of one block, in the add-on's order: attention sublayer, then MLP sublayer. */
export function blockWeights(b: BlockParams): tf.Tensor[] {
  const a = b.attn;
  return [b.ln1.gamma, b.ln1.beta, a.wq, a.bq, a.wk, a.bk, a.wv, a.bv, a.wo, a.bo, b.ln2.gamma, b.ln2.beta, b.mlp.w1, b.mlp.b1, b.mlp.w2, b.mlp.b2];
}

const WEIGHT_NAMES = [...ATTENTION_WEIGHTS.map((w) => `attn.${w}`), ...MLP_WEIGHTS.map((w) => `mlp.${w}`)];

function weightName(stack: number, layer: number, weight: string): string {
  return `s${stack}.l${layer}.${weight}`;
}

function savedShapes(sp: StackSpec, hidden: number): number[][] {
  return [...attentionSavedShapes(sp.batch, sp.tokens, sp.heads, sp.width), ...mlpSavedShapes(sp.batch * sp.tokens, sp.width, hidden)];
}

/**
 * Where each layer's saved tensors lie in the one saved buffer (floats from its start, each at a multiple of 16): one
 * tensor instead of ~90 saves the engine a tensor, a clone and a gradient input for each.
 */
function savedLayout(specs: StackSpec[]): { offsets: number[][][]; sizes: number[][][]; total: number } {
  let total = 0;
  const sizes = specs.map((sp) => sp.hidden.map((m) => savedShapes(sp, m).map((shape) => shape.reduce((a, b) => a * b, 1))));
  const offsets = sizes.map((stack) =>
    stack.map((layer) =>
      layer.map((n) => {
        const at = total;
        total += Math.ceil(n / 16) * 16;
        return at;
      }),
    ),
  );
  return { offsets, sizes, total };
}

function savedViews(all: Float32Array, layout: ReturnType<typeof savedLayout>, stack: number, layer: number): Float32Array[] {
  return layout.offsets[stack][layer].map((at, k) => all.subarray(at, at + layout.sizes[stack][layer][k]));
}

const FORWARD = 'FlipNativeStacks';
const BACKWARD = 'FlipNativeStacksGrad';

/** Row offset of stack s in the packed [rowsA + rowsB, width] output (and its gradient). */
function rowOffset(specs: StackSpec[], s: number): number {
  return specs.slice(0, s).reduce((n, sp) => n + sp.batch * sp.tokens, 0);
}

/** Rows of all stacks together: the packed output's first dimension. */
export function packedRows(specs: StackSpec[]): number {
  return rowOffset(specs, specs.length);
}

/** Floats of the one buffer that holds every layer's saved tensors. */
export function savedFloats(specs: StackSpec[]): number {
  return savedLayout(specs).total;
}

/** The forward call's temporaries: the residual stream between sublayers (the last one is the packed output). */
export function forwardTempShapes(specs: StackSpec[]): number[][] {
  return specs.flatMap((s) => s.hidden.flatMap((_, l) => (l + 1 < s.hidden.length ? [[s.batch * s.tokens, s.width], [s.batch * s.tokens, s.width]] : [[s.batch * s.tokens, s.width]])));
}

/** The backward call's temporaries: the gradients between sublayers (the first layer's is the stack's input gradient). */
export function backwardTempShapes(specs: StackSpec[]): number[][] {
  return specs.flatMap((s) => s.hidden.flatMap((_, l) => (l > 0 ? [[s.batch * s.tokens, s.width], [s.batch * s.tokens, s.width]] : [[s.batch * s.tokens, s.width]])));
}

/** A layer's 16 weights (or their gradients), in the add-on's order: stack s, layer l. */
export type LayerArrays = (stack: number, layer: number) => Float32Array[];

/**
 * The add-on's stacksForward argument: stack i reads h[i] (and keyBias[i]), writes its rows of `packed` and its
 * layers' saved tensors into `saved` (savedFloats long); temps as forwardTempShapes.
 */
export function stacksForwardArg(specs: StackSpec[], weights: LayerArrays, h: Float32Array[], keyBias: (Float32Array | null)[], packed: Float32Array, saved: Float32Array, temps: Float32Array[]): object[] {
  const layout = savedLayout(specs);
  let ti = 0;
  return specs.map((s, si) => {
    const n = s.batch * s.tokens;
    const at = rowOffset(specs, si) * s.width;
    const layers = s.hidden.map((hidden, l) => {
      const w = weights(si, l);
      const sv = savedViews(saved, layout, si, l);
      const attnOut = temps[ti++];
      const mlpOut = l + 1 < s.hidden.length ? temps[ti++] : packed.subarray(at, at + n * s.width);
      return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnOut, attnSaved: sv.slice(0, ATTENTION_SAVED.length), mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpOut, mlpSaved: sv.slice(ATTENTION_SAVED.length) };
    });
    return { ...s, h: h[si], keyBias: s.hasKeyBias ? keyBias[si] : null, layers };
  });
}

/**
 * The add-on's stacksBackward argument: from dy (the packed output's gradient) and the saved tensors, stack i writes its
 * input gradient dh[i] and its layers' weight gradients `grads`; temps as backwardTempShapes.
 */
export function stacksBackwardArg(specs: StackSpec[], weights: LayerArrays, dy: Float32Array, saved: Float32Array, dh: Float32Array[], grads: LayerArrays, temps: Float32Array[]): object[] {
  const layout = savedLayout(specs);
  if (saved.length !== layout.total) throw new Error(`stacks backward: saved has ${saved.length} floats, expected ${layout.total}`);
  let ti = 0;
  return specs.map((s, si) => {
    const n = s.batch * s.tokens;
    const layers = s.hidden.map((hidden, l) => {
      const w = weights(si, l);
      const sv = savedViews(saved, layout, si, l);
      const g = grads(si, l);
      // The first layer's attention dh is the stack's input gradient (an output); the others are temporaries.
      const attnDh = l === 0 ? dh[si] : temps[ti++];
      const mlpDh = temps[ti++];
      return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnSaved: sv.slice(0, ATTENTION_SAVED.length), attnGrads: [attnDh, ...g.slice(0, ATTENTION_WEIGHTS.length)], mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpSaved: sv.slice(ATTENTION_SAVED.length), mlpGrads: [mlpDh, ...g.slice(ATTENTION_WEIGHTS.length)] };
    });
    const off = rowOffset(specs, si) * s.width;
    // The backward pass reads the saved probabilities, not the key bias.
    return { ...s, dy: dy.subarray(off, off + n * s.width), keyBias: null, layers };
  });
}

function registerStackKernels(): void {
  if (tf.getKernel(FORWARD, 'wasm')) return;
  const addon = loadNativeAddon().addon;
  if (!addon) throw new Error('native stacks: the add-on is not loaded');
  const layerViews = (be: WasmBackendInternals, ins: Record<string, tf.TensorInfo>): LayerArrays => (si, l) => WEIGHT_NAMES.map((name) => view(be, ins[weightName(si, l, name)], name));

  // Inputs: s<i>.h, s<i>.keyBias, weights; outputs: the packed stack outputs, then every layer's saved tensors in one.
  const forward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const sp = JSON.parse((attrs as { specs: string }).specs) as StackSpec[];
    const outs = allocate(be, [[packedRows(sp), sp[0].width], [savedFloats(sp)]]);
    const temps = allocate(be, forwardTempShapes(sp));
    const [packed, saved] = outs.map((o) => view(be, o, 'output'));
    const h = sp.map((_, si) => view(be, ins[`s${si}.h`], 'h'));
    const keyBias = sp.map((s, si) => (s.hasKeyBias ? view(be, ins[`s${si}.keyBias`], 'keyBias') : null));
    const arg = stacksForwardArg(sp, layerViews(be, ins), h, keyBias, packed, saved, temps.map((o) => view(be, o, 'buffer')));
    addon.stacksForward(arg, (attrs as { halves: boolean }).halves);
    release(be, temps);
    return outs;
  };

  // Inputs: dy (packed), weights, saved (all layers' in one buffer); outputs: dh per stack, then every weight's gradient.
  const backward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const sp = JSON.parse((attrs as { specs: string }).specs) as StackSpec[];
    const weightShapes = sp.flatMap((s, si) => s.hidden.flatMap((_, l) => WEIGHT_NAMES.map((name) => ins[weightName(si, l, name)].shape)));
    const outs = allocate(be, [...sp.map((s) => [s.batch * s.tokens, s.width]), ...weightShapes]);
    const temps = allocate(be, backwardTempShapes(sp));
    const v = outs.map((o) => view(be, o, 'gradient'));
    // Weight gradients follow the stacks' dh outputs, 16 per layer, stack by stack.
    const firstLayer = sp.map((_, si) => sp.slice(0, si).reduce((n, s) => n + s.hidden.length, 0));
    const grads: LayerArrays = (si, l) => v.slice(sp.length + (firstLayer[si] + l) * WEIGHT_NAMES.length, sp.length + (firstLayer[si] + l + 1) * WEIGHT_NAMES.length);
    const arg = stacksBackwardArg(sp, layerViews(be, ins), view(be, ins.dy, 'dy'), view(be, ins.saved, 'saved'), v.slice(0, sp.length), grads, temps.map((o) => view(be, o, 'buffer')));
    addon.stacksBackward(arg, (attrs as { halves: boolean }).halves);
    release(be, temps);
    return outs;
  };

  tf.registerKernel({ kernelName: FORWARD, backendName: 'wasm', kernelFunc: forward });
  tf.registerKernel({ kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backward });
}

/**
 * Whether each stack can have a thread to itself: work (rows x depth) within 1.5x. On the reference step (single
 * `npm run bench` runs here): at mask 0.75 (1,088 vs 1,024 rows) a thread per tower gave 2.4-2.6x the speed of mask 0,
 * halves 2.3x; at 0.5 (2,112 vs 1,024) a thread per tower leaves one idle (0.18 s a step against 0.145 s). Shapes
 * only: the choice changes the arithmetic, so it must not depend on the thread count.
 */
function closeInSize(specs: StackSpec[]): boolean {
  const work = specs.map((s) => s.batch * s.tokens * s.hidden.length);
  return Math.max(...work) <= 1.5 * Math.min(...work);
}

/** Whether the add-on splits every stack into halves (else a stack per thread): by shapes only. */
export function runsInHalves(specs: StackSpec[]): boolean {
  return !closeInSize(specs);
}

/** The shape of a stack of these blocks over batch samples of `tokens` rows of `width`. */
export function stackSpec(blocks: BlockParams[], batch: number, tokens: number, width: number, eps: number, hasKeyBias: boolean): StackSpec {
  return { batch, tokens, heads: blocks[0]?.attn.heads ?? 1, width, eps, hidden: blocks.map((b) => b.mlp.w1.shape[1] as number), hasKeyBias };
}

/**
 * Both stacks' outputs, computed side by side and packed in one tensor [batchA * tokensA + batchB * tokensB, width]
 * (stack A's rows first), as the CLIP head kernel takes them. Both stacks must have the same width.
 */
export function nativeTwoStacks(stacks: [StackInput, StackInput], eps: number): tf.Tensor2D {
  const specs: StackSpec[] = stacks.map((s) => {
    if (s.h.shape[0] !== s.batch * s.tokens) throw new Error(`stacks: h has ${s.h.shape[0]} rows, expected batch ${s.batch} x tokens ${s.tokens}`);
    checkKeyBias(s.keyBias, s.batch, s.tokens);
    return stackSpec(s.blocks, s.batch, s.tokens, s.h.shape[1], eps, s.keyBias !== null);
  });
  if (specs[0].width !== specs[1].width) throw new Error(`stacks: widths ${specs[0].width} and ${specs[1].width} differ`);
  registerStackKernels();
  const attrs = { specs: JSON.stringify(specs), halves: runsInHalves(specs) } as unknown as tf.NamedAttrMap;
  const keyBiases: Record<string, tf.Tensor> = {};
  stacks.forEach((s, si) => s.keyBias && (keyBiases[`s${si}.keyBias`] = s.keyBias));
  const weights = stacks.flatMap((s) => s.blocks.flatMap(blockWeights));
  const names = stacks.flatMap((s, si) => s.blocks.flatMap((_, l) => WEIGHT_NAMES.map((w) => weightName(si, l, w))));
  const op = { forward: FORWARD, backward: BACKWARD, attrs, leading: ['s0.h', 's1.h'], constants: keyBiases, weightNames: names, weights };
  return runSavedBufferOp(op, stacks[0].h, stacks[1].h) as tf.Tensor2D;
}
