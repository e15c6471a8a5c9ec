/**
 * The autodiff engine: tfjs's variableGrads over FlipModel.loss, on whatever layer ops the model was built with
 * (plain tfjs, or the native kernels with their hand-written gradients). It runs every configuration the trainer
 * accepts, on every backend, which makes it the reference the other engines are checked against.
 */
import * as tf from '@tensorflow/tfjs';
import type { FlipModel, ModelBatch } from '../flip-model.js';
import type { NativeAddon } from '../kernels/native/addon.js';
import { nativeScratchBytes } from '../kernels/native/register.js';
import { AdamW, type AdamWOptions } from '../optimizer.js';
import type { VitTokens } from '../vit.js';
import type { Engine, StepOutput } from './engine.js';

export class AutodiffEngine implements Engine {
  readonly name = 'autodiff' as const;
  readonly resumable = true;
  private held: { value: tf.Scalar; grads: tf.NamedTensorMap; bytes: number } | null = null;

  /** addon: drives AdamW's one-call update on the wasm heap when the native kernels are loaded. */
  constructor(
    readonly model: FlipModel,
    private readonly addon: NativeAddon | null,
  ) {}

  createOptimizer(opts: AdamWOptions): AdamW {
    return new AdamW(this.model.store.params, opts, this.addon);
  }

  lossAndGradients(batch: ModelBatch): void {
    this.release();
    const vars = this.model.store.variables();
    let bytes = 0;
    // The gradients in a scope of their own: once it closes, the forward pass's tensors are gone, among them clones
    // that share a parameter's memory, so the optimizer may write most parameters in place (models/optimizer.ts).
    const { value, grads } = tf.tidy(() => {
      const r = tf.variableGrads(() => this.model.loss(batch), vars);
      bytes = tf.memory().numBytes;
      return r;
    });
    this.held = { value, grads, bytes };
  }

  readGradients(): Float32Array[] {
    const held = this.requireHeld('readGradients');
    return this.model.store.params.map((p) => {
      const g = held.grads[p.variable.name];
      return g ? (g.dataSync() as Float32Array).slice() : new Float32Array(p.variable.size);
    });
  }

  update(optimizer: AdamW, lr: number): StepOutput {
    const { value, grads, bytes } = this.requireHeld('update');
    const model = this.model;
    try {
      const out = tf.tidy(() => {
        optimizer.step(
          model.store.params.map((p) => grads[p.variable.name] ?? null),
          lr,
        );
        model.clampLogitScale();
        const rec = model.lastReconstruction ?? tf.scalar(0);
        return tf.stack([value, model.logitScale, rec]) as tf.Tensor1D; // [3]: loss, log scale, reconstruction
      });
      return { out, bytes };
    } finally {
      this.release();
    }
  }

  async profiledStep(batch: ModelBatch, optimizer: AdamW, lr: number): Promise<StepOutput> {
    // tf.profile's peakBytes is the high point of tensor bytes over every kernel of the step. Its NaN check of every
    // kernel output is switched off meanwhile (time, not memory).
    const env = tf.env();
    const check = env.getBool('CHECK_COMPUTATION_FOR_ERRORS');
    env.set('CHECK_COMPUTATION_FOR_ERRORS', false);
    try {
      const profile = await tf.profile(() => {
        this.lossAndGradients(batch);
        return this.update(optimizer, lr).out;
      });
      // The native kernels' scratch buffers are memory too, though not tensors.
      return { out: profile.result as tf.Tensor1D, bytes: profile.peakBytes + nativeScratchBytes() };
    } finally {
      env.set('CHECK_COMPUTATION_FOR_ERRORS', check);
    }
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
    this.release();
  }

  private requireHeld(what: string): NonNullable<AutodiffEngine['held']> {
    if (!this.held) throw new Error(`AutodiffEngine.${what}: no gradients held; call lossAndGradients(batch) first`);
    return this.held;
  }

  private release(): void {
    if (!this.held) return;
    tf.dispose([this.held.value, ...Object.values(this.held.grads)]);
    this.held = null;
    this.model.lastReconstruction?.dispose();
    this.model.lastReconstruction = null;
  }
}
