/**
 * The towers' inputs as one native kernel each way (native/src/embeddings.cc): the image tower's patch embedding with
 * its fixed positions and CLS rows, and the text tower's token plus position embeddings. They replace the plain
 * versions' gathers, adds and the CLS broadcast product (models/vit.ts and models/text-encoder.ts build those), and
 * the host-side gather of the image positions. Compared with the plain versions by test/native-kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNativeAddon, type NativeAddon } from './addon.js';
import { allocate, indexView, view, type WasmBackendInternals } from './wasm-heap.js';

const PATCH = 'FlipNativePatchEmbedding';
const PATCH_GRAD = 'FlipNativePatchEmbeddingGrad';
const TOKEN = 'FlipNativeTokenEmbedding';
const TOKEN_GRAD = 'FlipNativeTokenEmbeddingGrad';

function addonOrThrow(): NativeAddon {
  const addon = loadNativeAddon().addon;
  if (!addon) throw new Error('native embeddings: the add-on is not loaded');
  return addon;
}

function registerEmbeddingKernels(addon: NativeAddon): void {
  if (tf.getKernel(PATCH, 'wasm')) return;
  const kernel = (kernelName: string, kernelFunc: (ins: Record<string, tf.TensorInfo>, attrs: Record<string, number>, be: WasmBackendInternals) => tf.TensorInfo[]) =>
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs, backend }) => kernelFunc(inputs as Record<string, tf.TensorInfo>, attrs as Record<string, number>, backend as unknown as WasmBackendInternals),
    });

  // Inputs pixels [B*T, P] (zero on CLS rows), keep [B*(T-1)] int32, w [P, D], bias [D], cls [1, D], positions [L, D].
  kernel(PATCH, (ins, a, be) => {
    const [p, d] = ins.w.shape;
    const rows = ins.pixels.shape[0];
    const [out] = allocate(be, [[rows, d]]);
    const f = (name: string) => view(be, ins[name], name);
    addon.patchEmbeddingForward(f('pixels'), indexView(be, ins.keep, 'keep'), f('w'), f('bias'), f('cls'), f('positions'), view(be, out, 'out'), a.batch, rows / a.batch, p, d, ins.positions.shape[0]);
    return [out];
  });
  // Inputs dy [B*T, D], pixels; outputs dw, dbias, dcls.
  kernel(PATCH_GRAD, (ins, a, be) => {
    const [rows, d] = ins.dy.shape;
    const p = ins.pixels.shape[1];
    const outs = allocate(be, [[p, d], [d], [1, d]]);
    const [dw, db, dcls] = outs.map((o) => view(be, o, 'gradient'));
    addon.patchEmbeddingBackward(view(be, ins.pixels, 'pixels'), view(be, ins.dy, 'dy'), dw, db, dcls, a.batch, rows / a.batch, p, d);
    return outs;
  });
  // Inputs ids, positions [N] int32, table [V, D], positionTable [C, D].
  kernel(TOKEN, (ins, _a, be) => {
    const [vocab, d] = ins.table.shape;
    const rows = ins.ids.shape[0];
    const [out] = allocate(be, [[rows, d]]);
    addon.tokenEmbeddingForward(indexView(be, ins.ids, 'ids'), indexView(be, ins.positions, 'positions'), view(be, ins.table, 'table'), view(be, ins.positionTable, 'positionTable'), view(be, out, 'out'), rows, vocab, ins.positionTable.shape[0], d);
    return [out];
  });
  // Inputs dy [N, D], ids, positions; attrs vocab, context; outputs dtable, dpositionTable.
  kernel(TOKEN_GRAD, (ins, a, be) => {
    const [rows, d] = ins.dy.shape;
    const outs = allocate(be, [[a.vocab, d], [a.context, d]]);
    const [dt, dp] = outs.map((o) => view(be, o, 'gradient'));
    addon.tokenEmbeddingBackward(indexView(be, ins.ids, 'ids'), indexView(be, ins.positions, 'positions'), view(be, ins.dy, 'dy'), dt, dp, rows, a.vocab, a.context, d);
    return outs;
  });
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number>): tf.Tensor[] {
  return tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/**
 * The image tower's block input [B*T, D]: row 0 of each sample cls + bias, then its kept patches pixels w + bias +
 * positions[keep]. pixels [B*T, P] is zero on CLS rows; keep [B*(T-1)] indexes the rows of positions [L, D].
 * Gradients for w, bias and cls.
 */
export function nativePatchEmbedding(pixels: tf.Tensor2D, keep: Int32Array, batch: number, w: tf.Tensor, bias: tf.Tensor, cls: tf.Tensor, positions: tf.Tensor2D): tf.Tensor2D {
  const addon = addonOrThrow();
  registerEmbeddingKernels(addon);
  const rows = pixels.shape[0];
  if (rows % batch !== 0 || keep.length !== rows - batch) throw new Error(`patch embedding: ${rows} rows and ${keep.length} kept patches for batch ${batch}`);
  const keepTensor = tf.tensor1d(keep, 'int32');
  const op = tf.customGrad((ws, bs, cs, save) => {
    // Saved: the forward pass's other tensors are gone when the gradient runs.
    (save as tf.GradSaveFunc)([pixels]);
    return {
      value: run(PATCH, { pixels, keep: keepTensor, w: ws as tf.Tensor, bias: bs as tf.Tensor, cls: cs as tf.Tensor, positions }, { batch })[0],
      gradFunc: (dy: tf.Tensor, [px]: tf.Tensor[]) => run(PATCH_GRAD, { dy, pixels: px }, { batch }),
    };
  });
  return op(w, bias, cls) as tf.Tensor2D;
}

/** The text tower's block input [N, D] = table[ids] + positionTable[positions]; gradients for both tables. */
export function nativeTokenEmbedding(ids: Int32Array, positions: Int32Array, table: tf.Tensor, positionTable: tf.Tensor): tf.Tensor2D {
  const addon = addonOrThrow();
  registerEmbeddingKernels(addon);
  const idTensor = tf.tensor1d(ids, 'int32');
  const positionTensor = tf.tensor1d(positions, 'int32');
  const attrs = { vocab: table.shape[0], context: positionTable.shape[0] };
  const op = tf.customGrad((t, p, save) => {
    // Saved: the forward pass's other tensors are gone when the gradient runs.
    (save as tf.GradSaveFunc)([idTensor, positionTensor]);
    return {
      value: run(TOKEN, { ids: idTensor, positions: positionTensor, table: t as tf.Tensor, positionTable: p as tf.Tensor }, attrs)[0],
      gradFunc: (dy: tf.Tensor, [i, p2]: tf.Tensor[]) => run(TOKEN_GRAD, { dy, ids: i, positions: p2 }, attrs),
    };
  });
  return op(table, positionTable) as tf.Tensor2D;
}
