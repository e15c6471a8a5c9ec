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

interface StackSpec {
  batch: number;
  tokens: number;
  heads: number;
  width: number;
  eps: number;
  hidden: number[];
  hasKeyBias: boolean;
}

/** The weights of one block, in the add-on's order: attention sublayer, then MLP sublayer. */
function blockWeights(b: BlockParams): tf.Tensor[] {
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

function registerStackKernels(): void {
  if (tf.getKernel(FORWARD, 'wasm')) return;
  const addon = loadNativeAddon().addon;
  if (!addon) throw new Error('native stacks: the add-on is not loaded');

  // Inputs: s<i>.h, s<i>.keyBias, weights; outputs: the packed stack outputs, then every layer's saved tensors in one.
  const forward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const sp = JSON.parse((attrs as { specs: string }).specs) as StackSpec[];
    const width = sp[0].width;
    const rows = rowOffset(sp, sp.length);
    const layout = savedLayout(sp);
    const outs = allocate(be, [[rows, width], [layout.total]]);
    // The residual stream between sublayers never leaves the call (the last one is written into the packed output).
    const temps = allocate(be, sp.flatMap((s) => s.hidden.flatMap((_, l) => (l + 1 < s.hidden.length ? [[s.batch * s.tokens, width], [s.batch * s.tokens, width]] : [[s.batch * s.tokens, width]]))));
    const v = outs.map((o) => view(be, o, 'output'));
    const t = temps.map((o) => view(be, o, 'buffer'));
    let ti = 0;
    const arg = sp.map((s, si) => {
      const n = s.batch * s.tokens;
      const packed = v[0].subarray(rowOffset(sp, si) * width, (rowOffset(sp, si) + n) * width);
      const layers = s.hidden.map((hidden, l) => {
        const w = WEIGHT_NAMES.map((name) => view(be, ins[weightName(si, l, name)], name));
        const saved = savedViews(v[1], layout, si, l);
        const attnOut = t[ti++];
        const mlpOut = l + 1 < s.hidden.length ? t[ti++] : packed;
        return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnOut, attnSaved: saved.slice(0, ATTENTION_SAVED.length), mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpOut, mlpSaved: saved.slice(ATTENTION_SAVED.length) };
      });
      return { ...s, h: view(be, ins[`s${si}.h`], 'h'), keyBias: s.hasKeyBias ? view(be, ins[`s${si}.keyBias`], 'keyBias') : null, layers };
    });
    addon.stacksForward(arg, (attrs as { halves: boolean }).halves);
    release(be, temps);
    return outs;
  };

  // Inputs: dy (packed), weights, saved (all layers' in one buffer); outputs: dh per stack, then every weight's gradient.
  const backward: tf.KernelFunc = ({ inputs, attrs, backend }) => {
    const be = backend as unknown as WasmBackendInternals;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const sp = JSON.parse((attrs as { specs: string }).specs) as StackSpec[];
    const width = sp[0].width;
    const weightShapes = sp.flatMap((s, si) => s.hidden.flatMap((_, l) => WEIGHT_NAMES.map((name) => ins[weightName(si, l, name)].shape)));
    const outs = allocate(be, [...sp.map((s) => [s.batch * s.tokens, width]), ...weightShapes]);
    // Gradients between sublayers never leave the call.
    const temps = allocate(be, sp.flatMap((s) => s.hidden.flatMap((_, l) => (l > 0 ? [[s.batch * s.tokens, width], [s.batch * s.tokens, width]] : [[s.batch * s.tokens, width]]))));
    const v = outs.map((o) => view(be, o, 'gradient'));
    const t = temps.map((o) => view(be, o, 'buffer'));
    const dy = view(be, ins.dy, 'dy');
    const layout = savedLayout(sp);
    const savedAll = view(be, ins.saved, 'saved');
    if (savedAll.length !== layout.total) throw new Error(`stacks backward: saved has ${savedAll.length} floats, expected ${layout.total}`);
    let wi = sp.length;
    let ti = 0;
    const arg = sp.map((s, si) => {
      const n = s.batch * s.tokens;
      const layers = s.hidden.map((hidden, l) => {
        const w = WEIGHT_NAMES.map((name) => view(be, ins[weightName(si, l, name)], name));
        const saved = savedViews(savedAll, layout, si, l);
        const grads = v.slice(wi, wi + WEIGHT_NAMES.length);
        wi += WEIGHT_NAMES.length;
        // The first layer's attention dh is the stack's input gradient (an output); the others are temporaries.
        const attnDh = l === 0 ? v[si] : t[ti++];
        const mlpDh = t[ti++];
        return { hidden, attnWeights: w.slice(0, ATTENTION_WEIGHTS.length), attnSaved: saved.slice(0, ATTENTION_SAVED.length), attnGrads: [attnDh, ...grads.slice(0, ATTENTION_WEIGHTS.length)], mlpWeights: w.slice(ATTENTION_WEIGHTS.length), mlpSaved: saved.slice(ATTENTION_SAVED.length), mlpGrads: [mlpDh, ...grads.slice(ATTENTION_WEIGHTS.length)] };
      });
      const off = rowOffset(sp, si) * width;
      // The backward pass reads the saved probabilities, not the key bias.
      return { ...s, dy: dy.subarray(off, off + n * width), keyBias: null, layers };
    });
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

/**
 * Both stacks' outputs, computed side by side and packed in one tensor [batchA * tokensA + batchB * tokensB, width]
 * (stack A's rows first), as the CLIP head kernel takes them. Both stacks must have the same width.
 */
export function nativeTwoStacks(stacks: [StackInput, StackInput], eps: number): tf.Tensor2D {
  const specs: StackSpec[] = stacks.map((s) => {
    if (s.h.shape[0] !== s.batch * s.tokens) throw new Error(`stacks: h has ${s.h.shape[0]} rows, expected batch ${s.batch} x tokens ${s.tokens}`);
    checkKeyBias(s.keyBias, s.batch, s.tokens);
    return { batch: s.batch, tokens: s.tokens, heads: s.blocks[0]?.attn.heads ?? 1, width: s.h.shape[1], eps, hidden: s.blocks.map((b) => b.mlp.w1.shape[1] as number), hasKeyBias: s.keyBias !== null };
  });
  if (specs[0].width !== specs[1].width) throw new Error(`stacks: widths ${specs[0].width} and ${specs[1].width} differ`);
  registerStackKernels();
  const attrs = { specs: JSON.stringify(specs), halves: !closeInSize(specs) } as unknown as tf.NamedAttrMap;
  const keyBiases: Record<string, tf.Tensor> = {};
  stacks.forEach((s, si) => s.keyBias && (keyBiases[`s${si}.keyBias`] = s.keyBias));
  const weights = stacks.flatMap((s) => s.blocks.flatMap(blockWeights));
  const names = stacks.flatMap((s, si) => s.blocks.flatMap((_, l) => WEIGHT_NAMES.map((w) => weightName(si, l, w))));
  // Weights that are variables outlive the gradient computation and are used directly; others are saved.
  const weightsAreVariables = weights.every((w) => w instanceof tf.Variable);
  const op = tf.customGrad((...args) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [hA, hB, ...ws] = args as tf.Tensor[];
    const inputs: Record<string, tf.Tensor> = { 's0.h': hA, 's1.h': hB, ...keyBiases };
    names.forEach((n, i) => (inputs[n] = ws[i]));
    const [packed, saved] = tf.engine().runKernel(FORWARD, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
    save(weightsAreVariables ? [saved] : [saved, ...ws]);
    return {
      value: packed,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const w = weightsAreVariables ? ws : kept.slice(1);
        // Only saved tensors and variables here: anything else of the forward pass is disposed by now.
        const gradInputs: Record<string, tf.Tensor> = { dy, saved: kept[0] };
        names.forEach((n, i) => (gradInputs[n] = w[i]));
        return tf.engine().runKernel(BACKWARD, gradInputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
      },
    };
  });
  return op(stacks[0].h, stacks[1].h, ...weights) as tf.Tensor2D;
}
