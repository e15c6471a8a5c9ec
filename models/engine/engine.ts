/**
 * An engine computes the training step of a FlipModel: the loss and every parameter's gradient for a batch, the
 * AdamW update from those gradients, and the forward pass that evaluation embeds with. The trainer talks to the
 * engine only through this interface; models/engine/select.ts is the one place where an engine is chosen:
 * - 'autodiff': tfjs's autodiff over the model's layer ops (the reference, and the fallback for every case);
 * - 'native':   the engine-free step on the native kernels (no tape, no tensors for activations or gradients);
 * - 'webgpu':   the project's own WGSL kernels on tfjs-backend-webgpu's device: a plan built once per shape, flat
 *               parameter / gradient / moment buffers, one submit per step (models/engine/webgpu/).
 * Every engine's loss and gradients agree with the autodiff engine's on the same batch (test/engines.test.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { FlipModel, ModelBatch } from '../flip-model.js';
import type { AdamW, AdamWOptions } from '../optimizer.js';
import type { VitTokens } from '../vit.js';

export const ENGINE_NAMES = ['autodiff', 'native', 'webgpu'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** What one step leaves for the trainer. */
export interface StepOutput {
  /** [3]: loss, log logit scale after the update, reconstruction loss (0 without the MAE decoder); on the backend, so
   * the caller reads all three with one data() call. */
  out: tf.Tensor1D;
  /** Bytes of the step's activations and gradients at their high point (tensors and the engine's own buffers). */
  bytes: number;
}

export interface Engine {
  readonly name: EngineName;
  readonly model: FlipModel;
  /** Whether its optimizer state can be saved and restored exactly (AdamW.exportState / importState), so that the
   * trainer may write mid-training resume states (models/resume.ts). */
  readonly resumable: boolean;
  /** An AdamW over the model's parameters that this engine's update() can drive. */
  createOptimizer(opts: AdamWOptions): AdamW;
  /** The loss of one batch and every parameter's gradient, held by the engine until update() or the next call. */
  lossAndGradients(batch: ModelBatch): void;
  /** The held gradients as host arrays, in model.store.params order (for comparing engines; not on the hot path).
   * A device engine answers with a promise (a GPU read-back cannot be synchronous). */
  readGradients(): Float32Array[] | Promise<Float32Array[]>;
  /** AdamW at lr with the held gradients, then the logit-scale clamp; releases the gradients. */
  update(optimizer: AdamW, lr: number): StepOutput;
  /** One whole step with its memory high point measured exactly (the first step of a phase; the later ones have the
   * same shapes). */
  profiledStep(batch: ModelBatch, optimizer: AdamW, lr: number): Promise<StepOutput>;
  /** Evaluation's forward pass: unit-length embeddings [B, E]. */
  embedImages(tokens: VitTokens, size: number): tf.Tensor2D;
  embedTexts(ids: Int32Array, positions: Int32Array, size: number): tf.Tensor2D;
  /** Brings the model's variables up to date with the engine's parameters, where the engine keeps its own copy
   * (before a checkpoint is saved or the model is read); a no-op where the engine trains the variables in place. */
  syncModel(): void;
  /** Releases what the engine holds beyond the model (a device engine's buffers); the model stays the caller's. */
  dispose(): void;
}

/** One optimisation step. */
export function trainStep(engine: Engine, optimizer: AdamW, batch: ModelBatch, lr: number): StepOutput {
  engine.lossAndGradients(batch);
  return engine.update(optimizer, lr);
}
