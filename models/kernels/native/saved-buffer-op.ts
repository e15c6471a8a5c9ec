/**
 * The op shape of the fused native kernels that keep what their backward pass needs in one buffer (the stacks, the
 * CLIP head): a forward kernel returning [value, saved] and a backward kernel taking dy, saved and the weights by name,
 * wrapped in one tf.customGrad over the leading inputs and the weights.
 */
import * as tf from '@tensorflow/tfjs';

export interface SavedBufferOp {
  forward: string;
  backward: string;
  attrs: tf.NamedAttrMap;
  /** Kernel input names of the leading (differentiated) inputs, in the op's argument order. */
  leading: string[];
  /** Inputs of the forward kernel that get no gradient (e.g. a key bias). */
  constants?: Record<string, tf.Tensor>;
  /** Kernel input names of the weights, in the order of `weights`. */
  weightNames: string[];
  weights: tf.Tensor[];
  /** The backward kernel's outputs -> one gradient per leading input, then per weight (default: as they are). */
  gradients?: (outputs: tf.Tensor[]) => tf.Tensor[];
}

/** Runs the op on the leading inputs; returns the forward kernel's value. */
export function runSavedBufferOp(op: SavedBufferOp, ...leading: tf.Tensor[]): tf.Tensor {
  const named = (names: string[], tensors: tf.Tensor[], into: Record<string, tf.Tensor>) => {
    names.forEach((n, i) => (into[n] = tensors[i]));
    return into as unknown as tf.NamedTensorMap;
  };
  // Weights that are variables outlive the gradient computation and are used directly; others are saved.
  const weightsAreVariables = op.weights.every((w) => w instanceof tf.Variable);
  const f = tf.customGrad((...args) => {
    const save = args.pop() as tf.GradSaveFunc;
    const lead = (args as tf.Tensor[]).slice(0, op.leading.length);
    const ws = (args as tf.Tensor[]).slice(op.leading.length);
    const inputs = named(op.weightNames, ws, named(op.leading, lead, { ...op.constants }));
    const [value, saved] = tf.engine().runKernel(op.forward, inputs, op.attrs) as tf.Tensor[];
    save(weightsAreVariables ? [saved] : [saved, ...ws]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        // Only saved tensors and variables here: anything else of the forward pass is disposed by now.
        const w = weightsAreVariables ? ws : kept.slice(1);
        const outputs = tf.engine().runKernel(op.backward, named(op.weightNames, w, { dy, saved: kept[0] }), op.attrs) as tf.Tensor[];
        return op.gradients ? op.gradients(outputs) : outputs;
      },
    };
  });
  return f(...leading, ...op.weights);
}
