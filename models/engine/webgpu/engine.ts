/**
 * The WebGPU engine: the training step as the project's own WGSL kernels on the device that tfjs-backend-webgpu
 * holds, outside tfjs. Parameters, gradients and both AdamW moments live in flat GPU buffers (models/engine/webgpu/
 * layout.ts); a StepPlan per set of shapes holds every other buffer and bind group; forward, backward and update are
 * recorded into one command encoder and go to the GPU in one queue.submit per step. The step's [3] output is a
 * tfjs tensor over a small GPU buffer the step writes (no copy), so the trainer's out.data() is the only read-back.
 *
 * The model's tfjs variables are read once, when the engine is made, and written back only when something must see
 * them (syncModel(): checkpoints, evaluation through embedImages / embedTexts).
 */
import * as tf from '@tensorflow/tfjs';
import { LOGIT_SCALE_MAX, type FlipModel, type ModelBatch } from '../../flip-model.js';
import { AdamW, V_FLOOR, type AdamWOptions } from '../../optimizer.js';
import type { VitTokens } from '../../vit.js';
import type { Engine, StepOutput } from '../engine.js';
import { createBuffer, MAP_READ_MODE, tfWebgpuBackend, USAGE, type TfWebgpuBackend } from './gpu.js';
import { ATTENTION_MAX_TOKENS } from './kernels/attention.js';
import { ParamLayout } from './layout.js';
import { StepPlan, type FlatBuffers } from './plan.js';

/** Token rows per chunk of a reduction over the batch's rows: enough chunks to fill a GPU at batch 256. */
const SPLIT_ROWS = 256;

/** How many [3] step outputs may be alive at once before the first is overwritten. */
const OUT_RING = 4;

/**
 * Why the WebGPU engine cannot train this model, or null when it can: it runs on tfjs-backend-webgpu's device and
 * holds a sequence's attention scores in workgroup memory.
 */
export function webgpuEngineUnsupported(model: FlipModel): string | null {
  if (!tfWebgpuBackend()) return `the backend is '${tf.getBackend()}', not webgpu`;
  const imageTokens = model.image.numPatches + 1;
  const textTokens = model.text.params.positions.shape[0];
  if (Math.max(imageTokens, textTokens) > ATTENTION_MAX_TOKENS) {
    return `a sequence of ${Math.max(imageTokens, textTokens)} tokens (image ${imageTokens}, text ${textTokens}) is longer than the attention kernels' ${ATTENTION_MAX_TOKENS}`;
  }
  return null;
}

/** AdamW whose state lives in the WebGPU engine's moment buffers; only WebGpuEngine.update() steps it. */
export class WebGpuAdamW extends AdamW {
  private steps = 0;

  constructor(opts: AdamWOptions) {
    super([], opts);
  }

  override step(): void {
    throw new Error('WebGpuAdamW.step: this optimizer is stepped by WebGpuEngine.update(optimizer, lr)');
  }

  override stepWithArrays(): void {
    throw new Error('WebGpuAdamW.stepWithArrays: this optimizer is stepped by WebGpuEngine.update(optimizer, lr)');
  }

  /** Counts a step; its bias corrections. */
  next(): { c1: number; c2: number } {
    this.steps += 1;
    return { c1: 1 / (1 - Math.pow(this.opts.beta1, this.steps)), c2: 1 / (1 - Math.pow(this.opts.beta2, this.steps)) };
  }

  override get stepCount(): number {
    return this.steps;
  }
}

export class WebGpuEngine implements Engine {
  readonly name = 'webgpu' as const;
  /** Its moments live in GPU buffers that AdamW.exportState / importState do not reach (not yet). */
  readonly resumable = false;
  readonly layout: ParamLayout;
  private readonly device: GPUDevice;
  private readonly flat: FlatBuffers;
  private readonly ring: GPUBuffer[];
  private ringAt = 0;
  private plan: StepPlan | null = null;
  /** The recorded forward and backward pass of the last lossAndGradients(), not yet submitted. */
  private pending: GPUCommandEncoder | null = null;
  /** Whether the gradient buffer holds the last batch's gradients that update() has not used yet. */
  private held = false;
  /** The optimizer whose state the moment buffers hold. */
  private momentsOf: WebGpuAdamW | null = null;
  /** Whether the parameters on the GPU have moved on from the model's variables. */
  private modelStale = false;

  /**
   * The caller checks webgpuEngineUnsupported(model) first (models/engine/select.ts). splitRows: token rows per
   * chunk of the reductions over the batch's rows (weight, bias and LayerNorm gradients); small values in tests.
   */
  constructor(
    readonly model: FlipModel,
    private readonly backend: TfWebgpuBackend,
    private readonly options: { splitRows?: number } = {},
  ) {
    const why = webgpuEngineUnsupported(model);
    if (why) throw new Error(`WebGpuEngine: cannot train this model: ${why}`);
    this.device = backend.device;
    // The MAE decoder's parameters (ParamStore names them 'decoder.*') form the range AdamW skips on steps without
    // removed patches.
    this.layout = new ParamLayout(model.store.params, (p) => p.name.startsWith('decoder.'));
    const bytes = this.layout.size * 4;
    const buf = (size: number, label: string) => createBuffer(this.device, size, label);
    this.flat = { params: buf(bytes, 'params'), grads: buf(bytes, 'grads'), m: buf(bytes, 'adam m'), v: buf(bytes, 'adam v'), out: buf(16, 'step out') };
    // [3] exactly: tfjs reads a tensor's whole buffer.
    this.ring = Array.from({ length: OUT_RING }, (_, i) => buf(12, `step out ${i}`));
    this.loadParams();
  }

  createOptimizer(opts: AdamWOptions): AdamW {
    return new WebGpuAdamW(opts);
  }

  lossAndGradients(batch: ModelBatch): void {
    const { model } = this;
    const size = batch.size;
    const rows = batch.image.pixels.length / model.image.patchValues;
    const imageTokens = rows / size;
    const textTokens = batch.ids.length / size;
    if (!Number.isInteger(imageTokens) || batch.image.keep.length !== rows - size || !Number.isInteger(textTokens) || batch.positions.length !== batch.ids.length) {
      throw new Error(`WebGpuEngine.lossAndGradients: ${rows} pixel rows, ${batch.image.keep.length} kept patches, ${batch.ids.length} ids and ${batch.positions.length} positions for batch ${size}`);
    }
    const plan = this.planFor(size, imageTokens, textTokens);
    plan.upload(batch, model.padId);
    const encoder = this.device.createCommandEncoder();
    plan.recordLossAndGradients(encoder);
    this.pending = encoder;
    this.held = true;
  }

  async readGradients(): Promise<Float32Array[]> {
    if (!this.held) throw new Error('WebGpuEngine.readGradients: no gradients held; call lossAndGradients(batch) first');
    this.submitPending();
    return this.layout.unpack(await this.read(this.flat.grads));
  }

  update(optimizer: AdamW, lr: number): StepOutput {
    if (!this.held || !this.plan) throw new Error('WebGpuEngine.update: no gradients held; call lossAndGradients(batch) first');
    if (!(optimizer instanceof WebGpuAdamW)) throw new Error('WebGpuEngine.update: the optimizer was not made by this engine (use engine.createOptimizer)');
    const encoder = this.pending ?? this.device.createCommandEncoder();
    this.pending = null;
    this.held = false;
    if (this.momentsOf !== optimizer) {
      // A fresh optimizer (unmasked tuning resets the state): its moments start at zero.
      encoder.clearBuffer(this.flat.m);
      encoder.clearBuffer(this.flat.v);
      this.momentsOf = optimizer;
    }
    const { beta1, beta2, eps, weightDecay } = optimizer.opts;
    const { c1, c2 } = optimizer.next();
    this.plan.recordUpdate(encoder, { lr, beta1, beta2, eps, weightDecay, c1, c2 }, V_FLOOR, LOGIT_SCALE_MAX);
    const out = this.ring[this.ringAt];
    this.ringAt = (this.ringAt + 1) % OUT_RING;
    encoder.copyBufferToBuffer(this.flat.out, 0, out, 0, 12);
    this.device.queue.submit([encoder.finish()]);
    this.modelStale = true;
    const tensor = tf.tensor({ buffer: out, zeroCopy: true }, [3], 'float32') as tf.Tensor1D;
    return { out: tensor, bytes: this.bytes() };
  }

  async profiledStep(batch: ModelBatch, optimizer: AdamW, lr: number): Promise<StepOutput> {
    // The step's memory is its buffers, all made before the step and held throughout.
    this.lossAndGradients(batch);
    return this.update(optimizer, lr);
  }

  embedImages(tokens: VitTokens, size: number): tf.Tensor2D {
    this.syncModel();
    return this.model.embedImages(tokens, size);
  }

  embedTexts(ids: Int32Array, positions: Int32Array, size: number): tf.Tensor2D {
    this.syncModel();
    return this.model.embedTexts(ids, positions, size);
  }

  /** Writes the GPU parameters into the model's variables (a copy through tfjs on the same device). */
  syncModel(): void {
    if (!this.modelStale) return;
    this.submitPending();
    const flat = tf.tensor({ buffer: this.flat.params }, [this.layout.size], 'float32'); // copied by tfjs
    tf.tidy(() => {
      this.model.store.params.forEach((p, i) => {
        p.variable.assign(tf.reshape(tf.slice(flat, this.layout.offsets[i], p.variable.size), p.variable.shape));
      });
    });
    flat.dispose();
    this.modelStale = false;
  }

  /** Dispatches one step records (forward, backward, AdamW), once a plan exists. */
  get dispatchesPerStep(): number {
    return this.plan?.dispatchCount ?? 0;
  }

  dispose(): void {
    this.plan?.destroy();
    this.plan = null;
    for (const b of [...Object.values(this.flat), ...this.ring]) b.destroy();
  }

  /** Bytes of the engine's GPU buffers (parameters and optimizer state included). */
  private bytes(): number {
    return 4 * this.layout.size * 4 + (this.plan?.bytes ?? 0);
  }

  private planFor(batch: number, imageTokens: number, textTokens: number): StepPlan {
    if (this.plan?.key !== StepPlan.keyOf(batch, imageTokens, textTokens)) {
      this.submitPending();
      this.plan?.destroy();
      this.plan = null;
      this.plan = new StepPlan(this.device, this.model, this.layout, this.flat, batch, imageTokens, textTokens, this.options.splitRows ?? SPLIT_ROWS);
    }
    return this.plan;
  }

  private submitPending(): void {
    if (!this.pending) return;
    this.device.queue.submit([this.pending.finish()]);
    this.pending = null;
  }

  /** The model's variables into the flat parameter buffer: host values where tfjs has them, else a GPU copy. */
  private loadParams(): void {
    const encoder = this.device.createCommandEncoder();
    const refs: tf.Tensor[] = [];
    this.model.store.params.forEach((p, i) => {
      const at = this.layout.offsets[i] * 4;
      let gpu: ReturnType<tf.Tensor['dataToGPU']> | null = null;
      try {
        gpu = p.variable.dataToGPU();
      } catch {
        gpu = null; // the values are on the host still
      }
      if (gpu?.buffer) {
        refs.push(gpu.tensorRef);
        encoder.copyBufferToBuffer(gpu.buffer, 0, this.flat.params, at, p.variable.size * 4);
      } else {
        this.device.queue.writeBuffer(this.flat.params, at, p.variable.dataSync() as Float32Array);
      }
    });
    this.device.queue.submit([encoder.finish()]);
    tf.dispose(refs);
  }

  /** A buffer's contents on the host (tests and readGradients; not on the step's path). */
  private async read(buffer: GPUBuffer): Promise<Float32Array> {
    const staging = this.device.createBuffer({ size: buffer.size, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: 'read-back' });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ_MODE);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    return out;
  }
}
