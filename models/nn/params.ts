/** Trainable parameters with seeded initialisation and a weight-decay flag per tensor. */
import * as tf from '@tensorflow/tfjs';
import { makeRng } from '../random.js';

export interface Param {
  name: string;
  variable: tf.Variable;
  /** AdamW applies weight decay only where this is true (matrices of linear layers and embedding tables). */
  decay: boolean;
}

let nextVariableId = 0;

export class ParamStore {
  readonly params: Param[] = [];
  private readonly rng: () => number;

  constructor(seed: number) {
    this.rng = makeRng(seed);
  }

  private add(name: string, values: Float32Array, shape: number[], decay: boolean): tf.Variable {
    if (this.params.some((p) => p.name === name)) throw new Error(`ParamStore: duplicate parameter name "${name}"`);
    const init = tf.tensor(values, shape, 'float32');
    // tfjs keeps one global registry of variable names: a process-wide counter keeps two models apart.
    const variable = tf.variable(init, true, `${name}#${nextVariableId++}`);
    init.dispose();
    this.params.push({ name, variable, decay });
    return variable;
  }

  /** Normal(0, std) from the store's seeded stream (Box-Muller). */
  normal(name: string, shape: number[], std: number, decay: boolean): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = Math.max(this.rng(), 1e-12);
      const u2 = this.rng();
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return this.add(name, out, shape, decay);
  }

  /** Xavier/Glorot uniform for a [fanIn, fanOut] matrix, as MAE and FLIP initialise linear layers. */
  xavier(name: string, fanIn: number, fanOut: number): tf.Variable {
    const a = Math.sqrt(6 / (fanIn + fanOut));
    const out = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < out.length; i++) out[i] = (2 * this.rng() - 1) * a;
    return this.add(name, out, [fanIn, fanOut], true);
  }

  constant(name: string, shape: number[], value: number, decay: boolean): tf.Variable {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
    return this.add(name, out, shape, decay);
  }

  variables(): tf.Variable[] {
    return this.params.map((p) => p.variable);
  }

  count(): number {
    return this.params.reduce((a, p) => a + p.variable.size, 0);
  }

  dispose(): void {
    for (const p of this.params) p.variable.dispose();
    this.params.length = 0;
  }
}
