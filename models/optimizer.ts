/**
 * AdamW (decoupled weight decay) and the learning-rate schedule: linear warm-up, then cosine to 0.
 *
 * Decay applies to matrices of linear layers, the patch embedding, the projections and the token embedding table;
 * not to biases, LayerNorm scales/shifts, position embeddings, the CLS token or the logit scale (Param.decay).
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './config.js';
import type { NativeAddon } from './kernels/native/addon.js';
import type { Param } from './nn/params.js';

/** Peak learning rate: train.lr when set, else base_lr x batch_size / 256. */
export function peakLr(config: TrainConfig): number {
  return config.train.lr ?? (config.train.base_lr * config.train.batch_size) / 256;
}

/** Unmasked-tuning peak lr: tune.base_lr x batch / 256 when set, else the pre-training peak / 100 (the paper's
 * 4e-8 against 4e-6). */
export function tunePeakLr(config: TrainConfig): number {
  return config.tune.base_lr != null ? (config.tune.base_lr * config.train.batch_size) / 256 : peakLr(config) / 100;
}

/** Unmasked-tuning steps: tune.steps, else round(tune.fraction x the pre-training steps run), else 0. */
export function tuneStepCount(config: TrainConfig, pretrainSteps: number): number {
  if (config.tune.steps != null) return config.tune.steps;
  if (config.tune.fraction != null) return Math.round(config.tune.fraction * pretrainSteps);
  return 0;
}

/** Warm-up length as a share of the run: train.warmup steps when >= 1 (over totalSteps), else the share itself. */
export function warmupShare(warmup: number, totalSteps: number): number {
  if (warmup >= 1) return Math.min(1, warmup / Math.max(1, totalSteps));
  return Math.max(0, warmup);
}

/** lr at progress in [0, 1] (steps done / total, or elapsed / time budget): linear warm-up then cosine to 0. */
export function lrAt(peak: number, warmShare: number, progress: number): number {
  const p = Math.min(Math.max(progress, 0), 1);
  if (warmShare > 0 && p < warmShare) return (peak * p) / warmShare;
  const rest = 1 - warmShare;
  const q = rest > 0 ? (p - warmShare) / rest : 1;
  return peak * 0.5 * (1 + Math.cos(Math.PI * q));
}

/** Added to the second moment each step; sqrt(1e-30) = 1e-15 is far below any eps in use. */
export const V_FLOOR = 1e-30;

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  /** How many tensors share this data (tfjs-backend-wasm 4.22). */
  refCount(dataId: object): number;
}

function wasmHeap(): WasmHeap | null {
  const b = tf.backend() as unknown as Partial<WasmHeap>;
  return tf.getBackend() === 'wasm' && typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function' && typeof b.refCount === 'function' ? (b as WasmHeap) : null;
}

/** What AdamW carries from step to step besides the parameters. */
export interface AdamWState {
  /** Steps taken (the bias corrections depend on it). */
  t: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * AdamW. On wasm the update reads views of the wasm heap (moments in JS arrays): with the native add-on one call
 * updates every parameter, in place where no other tensor shares it; without it, one JS loop per parameter writes a
 * fresh tensor. Either is ~10 kernel calls' worth of time instead of ~1,500 small kernel calls per step for the
 * default model. Elsewhere, one set of element-wise ops per parameter tensor.
 * (A flat [P] tf variant was tried: tf.split back into 150 tensors took ~1.5 s per step on wasm.)
 */
export class AdamW {
  private m: tf.Variable[] | null = null;
  private v: tf.Variable[] | null = null;
  private hostM: Float32Array[] | null = null;
  private hostV: Float32Array[] | null = null;
  private t = 0;

  /** addon: the native kernels' add-on when the engine runs on them (models/engine/select.ts decides), else null. */
  constructor(
    readonly params: Param[],
    readonly opts: AdamWOptions,
    private readonly addon: NativeAddon | null = null,
  ) {
    if (wasmHeap()) {
      this.hostM = params.map((p) => new Float32Array(p.variable.size));
      this.hostV = params.map((p) => new Float32Array(p.variable.size));
    } else {
      const zeros = (p: Param) => tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false));
      this.m = params.map(zeros);
      this.v = params.map(zeros);
    }
  }

  /**
   * grads in the order of params (null: not on this step's path, skipped).
   * p <- p - lr (mhat / (sqrt(vhat) + eps) + wd p), decay only where Param.decay.
   */
  step(grads: (tf.Tensor | null)[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW.step: ${grads.length} gradients for ${this.params.length} params`);
    const { c1, c2 } = this.nextStep();
    const heap = wasmHeap();
    const { beta1, beta2, eps, weightDecay } = this.opts;
    if (this.hostM && this.hostV && heap) {
      if (this.addon) {
        this.nativeStep(this.addon, heap, grads, lr, c1, c2);
        return;
      }
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i];
        const g = grads[i];
        if (g === null) continue;
        this.checkGradient(i, g);
        const out = heap.makeOutput(p.variable.shape, 'float32');
        // Views after makeOutput: an allocation may grow the heap and detach older views.
        const gv = heap.typedArrayFromHeap(g);
        const pv = heap.typedArrayFromHeap(p.variable);
        const ov = heap.typedArrayFromHeap(out);
        const m = this.hostM[i];
        const v = this.hostV[i];
        const wd = p.decay ? weightDecay : 0;
        for (let j = 0; j < m.length; j++) {
          const gj = gv[j];
          const mj = beta1 * m[j] + (1 - beta1) * gj;
          // + V_FLOOR keeps v a normal float (see V_FLOOR).
          const vj = beta2 * v[j] + (1 - beta2) * gj * gj + V_FLOOR;
          m[j] = mj;
          v[j] = vj;
          ov[j] = pv[j] - lr * ((mj * c1) / (Math.sqrt(vj * c2) + eps) + wd * pv[j]);
        }
        const next = tf.engine().makeTensorFromTensorInfo(out);
        p.variable.assign(next);
        next.dispose();
      }
      return;
    }
    const ms = this.m;
    const vs = this.v;
    if (!ms || !vs) throw new Error(`AdamW.step: built for the wasm backend, now on '${tf.getBackend()}'; build the optimizer after selecting the backend`);
    tf.tidy(() => {
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i];
        const g = grads[i];
        if (g === null) continue;
        const m = tf.add(tf.mul(ms[i], beta1), tf.mul(g, 1 - beta1));
        // + V_FLOOR keeps v a normal float: entries with zero gradients (unused token rows) would otherwise decay into
        // subnormals, which make wasm's sqrt/mul ~100x slower (measured 9 ms for a [128, 512] sqrt).
        const v = tf.add(tf.add(tf.mul(vs[i], beta2), tf.mul(tf.square(g), 1 - beta2)), V_FLOOR);
        ms[i].assign(m);
        vs[i].assign(v);
        let update = tf.div(tf.mul(m, c1), tf.add(tf.sqrt(tf.mul(v, c2)), eps));
        if (p.decay && weightDecay > 0) update = tf.add(update, tf.mul(p.variable, weightDecay));
        p.variable.assign(tf.sub(p.variable, tf.mul(update, lr)));
      }
    });
  }

  /**
   * The same update from gradients in host arrays (the native engine computes them outside tfjs), every one in the
   * order of params. Needs the native add-on on the wasm backend.
   */
  stepWithArrays(grads: Float32Array[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW.stepWithArrays: ${grads.length} gradients for ${this.params.length} params`);
    const heap = wasmHeap();
    if (!heap || !this.addon || !this.hostM) throw new Error('AdamW.stepWithArrays: needs the native kernels on the wasm backend');
    const { c1, c2 } = this.nextStep();
    this.nativeStep(this.addon, heap, grads, lr, c1, c2);
  }

  /** Counts the step; its bias corrections. */
  private nextStep(): { c1: number; c2: number } {
    this.t += 1;
    return { c1: 1 / (1 - Math.pow(this.opts.beta1, this.t)), c2: 1 / (1 - Math.pow(this.opts.beta2, this.t)) };
  }

  get stepCount(): number {
    return this.t;
  }

  /** The step count and both moments of every parameter (params order), as host arrays: for mid-training resume. */
  async exportState(): Promise<AdamWState> {
    const read = async (host: Float32Array[] | null, vars: tf.Variable[] | null) =>
      host ? host.map((x) => x.slice()) : Promise.all((vars ?? []).map(async (x) => (await x.data()) as Float32Array));
    return { t: this.t, m: await read(this.hostM, this.m), v: await read(this.hostV, this.v) };
  }

  /** Continues from an exported state: the same parameters, in the same order and shapes. */
  importState(state: AdamWState): void {
    const n = this.params.length;
    if (state.m.length !== n || state.v.length !== n) throw new Error(`AdamW.importState: moments of ${state.m.length} / ${state.v.length} parameters for ${n}`);
    this.params.forEach((p, i) => {
      if (state.m[i].length !== p.variable.size || state.v[i].length !== p.variable.size) {
        throw new Error(`AdamW.importState: ${p.name} [${p.variable.shape}] gets moments of ${state.m[i].length} / ${state.v[i].length} values`);
      }
    });
    this.t = state.t;
    if (this.hostM && this.hostV) {
      state.m.forEach((m, i) => this.hostM![i].set(m));
      state.v.forEach((v, i) => this.hostV![i].set(v));
      return;
    }
    this.params.forEach((p, i) => {
      tf.tidy(() => {
        this.m![i].assign(tf.tensor(state.m[i], p.variable.shape));
        this.v![i].assign(tf.tensor(state.v[i], p.variable.shape));
      });
    });
  }

  private checkGradient(i: number, g: tf.Tensor | Float32Array): void {
    const p = this.params[i];
    if (g instanceof Float32Array) {
      if (g.length !== p.variable.size) throw new Error(`AdamW.step: gradient ${i} has ${g.length} values for ${p.name} [${p.variable.shape}]`);
    } else if (g.dtype !== 'float32' || g.size !== p.variable.size) {
      throw new Error(`AdamW.step: gradient ${i} [${g.shape}] for ${p.name} [${p.variable.shape}]`);
    }
  }

  /**
   * Every parameter's update in one native call, split over the kernels' threads. A parameter is written in place
   * unless another tensor shares its memory (a clone kept somewhere: writing in place would change that tensor too);
   * those get a fresh tensor, as on the plain path. The values are the same either way.
   */
  private nativeStep(native: NativeAddon, heap: WasmHeap, grads: (tf.Tensor | Float32Array | null)[], lr: number, c1: number, c2: number): void {
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const live = grads.flatMap((g, i) => (g === null ? [] : [i]));
    live.forEach((i) => this.checkGradient(i, grads[i] as tf.Tensor | Float32Array));
    const fresh = live.map((i) => {
      const p = this.params[i].variable;
      return heap.refCount(p.dataId) > 1 ? heap.makeOutput(p.shape, 'float32') : null;
    });
    // Views only after every allocation: one may grow the wasm memory and detach views taken before it.
    const pv = live.map((i) => heap.typedArrayFromHeap(this.params[i].variable));
    native.adamwStep(
      pv,
      live.map((i) => {
        const g = grads[i] as tf.Tensor | Float32Array;
        return g instanceof Float32Array ? g : heap.typedArrayFromHeap(g);
      }),
      live.map((i) => (this.hostM as Float32Array[])[i]),
      live.map((i) => (this.hostV as Float32Array[])[i]),
      fresh.map((f, k) => (f ? heap.typedArrayFromHeap(f) : pv[k])),
      Float32Array.from(live, (i) => (this.params[i].decay ? weightDecay : 0)),
      lr,
      beta1,
      beta2,
      eps,
      c1,
      c2,
      V_FLOOR,
    );
    fresh.forEach((f, k) => {
      if (!f) return;
      const next = tf.engine().makeTensorFromTensorInfo(f);
      this.params[live[k]].variable.assign(next);
      next.dispose();
    });
  }

  dispose(): void {
    for (const x of [...(this.m ?? []), ...(this.v ?? [])]) x.dispose();
  }
}
