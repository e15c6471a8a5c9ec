/**
 * Where each parameter lives in the flat parameter buffer (and, at the same offsets, in the gradient and both moment
 * buffers). Parameters with weight decay come first, then the rest, each group in the model's order: one AdamW
 * dispatch then needs only the boundary, and a block's wq, wk, wv (and bq, bk, bv) sit back to back, so q, k and v
 * are one batched GEMM over a fixed stride. The optional parameters (the MAE decoder's: no gradient at all on a step
 * without removed patches, so AdamW must leave them alone then) sit in one range across that boundary:
 * [decayed] [decayed optional] [optional without decay] [without decay].
 */
import type * as tf from '@tensorflow/tfjs';
import type { Param } from '../../nn/params.js';

export class ParamLayout {
  /** Element offset of each parameter, in model.store.params order. */
  readonly offsets: number[];
  readonly size: number;
  /** Elements [0, decayEnd) have weight decay. */
  readonly decayEnd: number;
  /** Elements [optionalStart, optionalEnd) are the optional parameters. */
  readonly optionalStart: number;
  readonly optionalEnd: number;
  private readonly byVariable: Map<tf.Variable, number>;

  constructor(
    readonly params: Param[],
    optional: (p: Param) => boolean = () => false,
  ) {
    this.offsets = new Array(params.length).fill(0);
    let at = 0;
    const marks: number[] = [];
    for (const [decay, opt] of [[true, false], [true, true], [false, true], [false, false]]) {
      params.forEach((p, i) => {
        if (p.decay !== decay || optional(p) !== opt) return;
        this.offsets[i] = at;
        at += p.variable.size;
      });
      marks.push(at);
    }
    this.optionalStart = marks[0];
    this.decayEnd = marks[1];
    this.optionalEnd = marks[2];
    this.size = at;
    this.byVariable = new Map(params.map((p, i) => [p.variable, this.offsets[i]]));
  }

  /** The element offset of a parameter of this model. */
  of(v: tf.Variable): number {
    const at = this.byVariable.get(v);
    if (at === undefined) throw new Error(`ParamLayout: ${v.name} is not a parameter of this model`);
    return at;
  }

  /** Offset of `first`, checked to be followed by `rest` at steps of its size (for batched GEMMs over them). */
  run(first: tf.Variable, ...rest: tf.Variable[]): number {
    const at = this.of(first);
    rest.forEach((v, i) => {
      if (this.of(v) !== at + (i + 1) * first.size || v.size !== first.size) {
        throw new Error(`ParamLayout: ${v.name} does not follow ${first.name} at a stride of ${first.size} elements`);
      }
    });
    return at;
  }

  /** Host values of every parameter at their offsets (the flat buffer's first contents). */
  pack(values: Float32Array[]): Float32Array {
    const out = new Float32Array(this.size);
    values.forEach((v, i) => out.set(v, this.offsets[i]));
    return out;
  }

  /** Per-parameter views of a flat host array, in model.store.params order. */
  unpack(flat: Float32Array): Float32Array[] {
    return this.params.map((p, i) => flat.slice(this.offsets[i], this.offsets[i] + p.variable.size));
  }
}
