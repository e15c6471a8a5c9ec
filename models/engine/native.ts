/**
 * The native engine: the training loss and every parameter's gradient computed by calling the native kernels
 * directly (the towers' inputs, both towers' transformer stacks side by side in one call, the CLIP head, then back),
 * outside tfjs: no tape, no tensors for activations or gradients. tfjs's bookkeeping for the ~14 kernels of that path
 * and their ~150 output tensors cost ~4 ms a step, a fixed cost that masking cannot shrink. Activations and gradients
 * live in buffers of this object, reused from step to step while the shapes stay the same; parameters are read in
 * place on the wasm heap; AdamW reads the gradient arrays. Evaluation runs the model's forward pass on the native
 * layer ops. test/engines.test.ts checks loss and gradients against the autodiff engine.
 */
import * as tf from '@tensorflow/tfjs';
import type { FlipModel, ModelBatch } from '../flip-model.js';
import type { NativeAddon } from '../kernels/native/addon.js';
import { nativeScratchBytes } from '../kernels/native/register.js';
import { AdamW, type AdamWOptions } from '../optimizer.js';
import type { VitTokens } from '../vit.js';
import type { Engine, StepOutput } from './engine.js';
import {
  backwardTempShapes,
  blockWeights,
  forwardTempShapes,
  packedRows,
  runsInHalves,
  savedFloats,
  stackSpec,
  stacksBackwardArg,
  stacksForwardArg,
  type LayerArrays,
  type StackSpec,
} from '../kernels/native/stacks.js';
import { isWasmHeapBackend, type WasmBackendInternals } from '../kernels/native/wasm-heap.js';
import { LN_EPS } from '../nn/layernorm.js';
import { LOGIT_SCALE_MAX } from '../flip-model.js';
import { padKeyBias } from '../text-encoder.js';

const floats = (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1));

/** The step's buffers for one set of shapes. */
class StepBuffers {
  readonly hImage: Float32Array;
  readonly hText: Float32Array;
  readonly packed: Float32Array;
  readonly saved: Float32Array;
  readonly forwardTemps: Float32Array[];
  readonly headSaved: Float32Array;
  readonly dPacked: Float32Array;
  readonly dhImage: Float32Array;
  readonly dhText: Float32Array;
  readonly backwardTemps: Float32Array[];

  constructor(readonly key: string, specs: StackSpec[], headSavedFloats: number) {
    const [img, txt] = specs;
    this.hImage = floats([img.batch * img.tokens, img.width]);
    this.hText = floats([txt.batch * txt.tokens, txt.width]);
    this.packed = floats([packedRows(specs), img.width]);
    this.saved = floats([savedFloats(specs)]);
    this.forwardTemps = forwardTempShapes(specs).map(floats);
    this.headSaved = floats([headSavedFloats]);
    this.dPacked = floats([packedRows(specs), img.width]);
    this.dhImage = floats([img.batch * img.tokens, img.width]);
    this.dhText = floats([txt.batch * txt.tokens, txt.width]);
    this.backwardTemps = backwardTempShapes(specs).map(floats);
  }

  bytes(): number {
    const all = [this.hImage, this.hText, this.packed, this.saved, ...this.forwardTemps, this.headSaved, this.dPacked, this.dhImage, this.dhText, ...this.backwardTemps];
    return all.reduce((n, a) => n + a.byteLength, 0);
  }
}

/**
 * Why the native engine cannot train this model, or null when it can: it needs the wasm backend, no MAE decoder, and
 * both towers with blocks of one width (the stacks kernel packs both towers' rows into one output).
 */
export function nativeEngineUnsupported(model: FlipModel): string | null {
  if (!isWasmHeapBackend(tf.backend())) return `the backend is '${tf.getBackend()}', not wasm`;
  if (model.decoder) return 'the MAE decoder is on (loss.reconstruction_weight > 0)';
  if (model.image.params.blocks.length === 0 || model.text.params.blocks.length === 0) return 'a tower has no transformer blocks';
  if (model.image.cfg.width !== model.text.cfg.width) return `the towers' widths differ (${model.image.cfg.width} and ${model.text.cfg.width})`;
  return null;
}

export class NativeEngine implements Engine {
  readonly name = 'native' as const;
  readonly resumable = true;
  /** One gradient buffer per parameter, in the order of model.store.params. */
  private readonly grads: Float32Array[];
  private readonly gradOf: Map<tf.Variable, Float32Array>;
  private buffers: StepBuffers | null = null;
  /** The last lossAndGradients() call's loss, until update(). */
  private heldLoss: number | null = null;

  /** The caller checks nativeEngineUnsupported(model) first (models/engine/select.ts). */
  constructor(
    readonly model: FlipModel,
    private readonly addon: NativeAddon,
  ) {
    const why = nativeEngineUnsupported(model);
    if (why) throw new Error(`NativeEngine: cannot train this model: ${why}`);
    this.grads = model.store.params.map((p) => new Float32Array(p.variable.size));
    this.gradOf = new Map(model.store.params.map((p, i) => [p.variable, this.grads[i]]));
  }

  createOptimizer(opts: AdamWOptions): AdamW {
    return new AdamW(this.model.store.params, opts, this.addon);
  }

  lossAndGradients(batch: ModelBatch): void {
    this.heldLoss = this.run(batch);
  }

  readGradients(): Float32Array[] {
    if (this.heldLoss === null) throw new Error('NativeEngine.readGradients: no gradients held; call lossAndGradients(batch) first');
    return this.grads.map((g) => g.slice());
  }

  update(optimizer: AdamW, lr: number): StepOutput {
    const loss = this.heldLoss;
    if (loss === null) throw new Error('NativeEngine.update: no gradients held; call lossAndGradients(batch) first');
    this.heldLoss = null;
    const bytes = tf.memory().numBytes + this.bytes();
    optimizer.stepWithArrays(this.grads, lr);
    // The clamp (two tfjs kernels) only on the steps where the scale left [0, log 100].
    const logScale = this.logScale();
    if (!(logScale >= 0 && logScale <= LOGIT_SCALE_MAX)) this.model.clampLogitScale();
    return { out: tf.tensor1d([loss, this.logScale(), 0]), bytes };
  }

  async profiledStep(batch: ModelBatch, optimizer: AdamW, lr: number): Promise<StepOutput> {
    // No kernels to profile: the step's memory is its buffers, all held at once, which update() counts, plus the
    // kernels' scratch.
    this.lossAndGradients(batch);
    const { out, bytes } = this.update(optimizer, lr);
    return { out, bytes: bytes + nativeScratchBytes() };
  }

  embedImages(tokens: VitTokens, size: number): tf.Tensor2D {
    return this.model.embedImages(tokens, size);
  }

  embedTexts(ids: Int32Array, positions: Int32Array, size: number): tf.Tensor2D {
    return this.model.embedTexts(ids, positions, size);
  }

  /** The engine trains the model's variables in place. */
  syncModel(): void {}

  dispose(): void {
    this.buffers = null;
  }

  /** The log logit scale's current value, read in place on the wasm heap. */
  private logScale(): number {
    return (tf.backend() as unknown as WasmBackendInternals).typedArrayFromHeap(this.model.logitScale)[0];
  }

  /** Bytes of activations and gradients this engine holds (not tensors: tf.memory() does not count them). */
  private bytes(): number {
    return (this.buffers?.bytes() ?? 0) + this.grads.reduce((n, g) => n + g.byteLength, 0);
  }

  /** The loss of one batch; every parameter's gradient into this.grads. */
  private run(batch: ModelBatch): number {
    const { model, addon } = this;
    const heap = tf.backend() as unknown as WasmBackendInternals;
    // Views of the parameters on the wasm heap. Nothing below allocates on that heap, so they stay valid.
    const v = (t: tf.Tensor) => heap.typedArrayFromHeap(t) as Float32Array;
    const g = (t: tf.Variable) => this.gradOf.get(t) as Float32Array;
    const img = model.image;
    const txt = model.text;
    const size = batch.size;
    const width = img.cfg.width;
    const embed = model.imageProj.shape[1] as number;
    const { pixels, keep } = batch.image;
    const imageTokens = pixels.length / img.patchValues / size;
    const textTokens = batch.ids.length / size;
    if (!Number.isInteger(imageTokens) || keep.length !== size * (imageTokens - 1) || !Number.isInteger(textTokens) || batch.positions.length !== batch.ids.length) {
      throw new Error(`native step: ${pixels.length / img.patchValues} pixel rows, ${keep.length} kept patches, ${batch.ids.length} ids and ${batch.positions.length} positions for batch ${size}`);
    }
    const keyBias = padKeyBias(batch.ids, model.padId);
    const specs = [stackSpec(img.params.blocks, size, imageTokens, width, LN_EPS, false), stackSpec(txt.params.blocks, size, textTokens, width, LN_EPS, keyBias !== null)];
    const halves = runsInHalves(specs);
    const buf = this.buffersFor(specs, size, imageTokens, textTokens, width, embed);
    const ip = img.params;
    const tp = txt.params;
    const vocab = tp.tokens.shape[0];
    const context = tp.positions.shape[0];

    // Forward: the towers' inputs, both stacks, the head (which returns the loss).
    addon.patchEmbeddingForward(pixels, keep, v(ip.patchW), v(ip.patchB), v(ip.cls), img.positionTable, buf.hImage, size, imageTokens, img.patchValues, width, img.numPatches);
    addon.tokenEmbeddingForward(batch.ids, batch.positions, v(tp.tokens), v(tp.positions), buf.hText, size * textTokens, vocab, context, width);
    const blocks = [ip.blocks, tp.blocks];
    const views = blocks.map((stack) => stack.map((block) => blockWeights(block).map(v)));
    const weights: LayerArrays = (s, l) => views[s][l];
    addon.stacksForward(stacksForwardArg(specs, weights, [buf.hImage, buf.hText], [null, keyBias], buf.packed, buf.saved, buf.forwardTemps), halves);
    const head = [ip.lnFinal.gamma, ip.lnFinal.beta, model.imageProj, tp.lnFinal.gamma, tp.lnFinal.beta, model.textProj];
    const headWeights = head.map(v);
    const logScale = v(model.logitScale)[0];
    const loss = addon.clipHeadForward(buf.packed, headWeights, logScale, buf.headSaved, size, imageTokens, textTokens, true, false, width, embed, LN_EPS);

    // Backward, in reverse.
    const dLogScale = addon.clipHeadBackward(1, headWeights, buf.headSaved, buf.dPacked, head.map(g), size, imageTokens, textTokens, true, false, width, embed);
    g(model.logitScale)[0] = dLogScale;
    const grads: LayerArrays = (s, l) => blockWeights(blocks[s][l]).map((w) => g(w as tf.Variable));
    addon.stacksBackward(stacksBackwardArg(specs, weights, buf.dPacked, buf.saved, [buf.dhImage, buf.dhText], grads, buf.backwardTemps), halves);
    addon.patchEmbeddingBackward(pixels, buf.dhImage, g(ip.patchW), g(ip.patchB), g(ip.cls), size, imageTokens, img.patchValues, width);
    addon.tokenEmbeddingBackward(batch.ids, batch.positions, buf.dhText, g(tp.tokens), g(tp.positions), size * textTokens, vocab, context, width);
    return loss;
  }

  private buffersFor(specs: StackSpec[], size: number, imageTokens: number, textTokens: number, width: number, embed: number): StepBuffers {
    const key = `${size}:${imageTokens}:${textTokens}`;
    if (this.buffers?.key !== key) {
      this.buffers = null; // the old ones can go before the new ones are made
      this.buffers = new StepBuffers(key, specs, this.addon.clipHeadSavedFloats(size, imageTokens, textTokens, true, false, width, embed));
    }
    return this.buffers;
  }
}
