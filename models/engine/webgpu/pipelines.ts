/**
 * The engine's compute pipelines, compiled once per device: one per kernel, with the bind group layout the shader
 * declares ('auto'). Bindings are numbered in declaration order, the uniform block last.
 */
import { ADAMW_WGSL } from './kernels/adamw.js';
import { ATTENTION_BACKWARD_KEY_WGSL, ATTENTION_BACKWARD_QUERY_WGSL, ATTENTION_FORWARD_WGSL } from './kernels/attention.js';
import { COLUMN_SUM_WGSL } from './kernels/column-sum.js';
import { CONTRASTIVE_WGSL } from './kernels/contrastive.js';
import { DECODER_INPUT_WGSL, PATCH_LOSS_WGSL } from './kernels/reconstruction.js';
import { SUM_PARTIALS_WGSL } from './kernels/partials.js';
import { PATCH_POSITIONS_WGSL, SCATTER_ROWS_WGSL, TOKEN_EMBEDDING_WGSL } from './kernels/embedding.js';
import { GEMM_WGSL } from './kernels/gemm.js';
import { LAYERNORM_BACKWARD_WGSL, LAYERNORM_FORWARD_WGSL, LAYERNORM_PARAM_GRAD_WGSL } from './kernels/layernorm.js';
import { L2NORM_BACKWARD_WGSL, L2NORM_FORWARD_WGSL, POOL_WGSL, UNPOOL_WGSL } from './kernels/pooling.js';

export const KERNELS = {
  gemm: GEMM_WGSL,
  layerNorm: LAYERNORM_FORWARD_WGSL,
  layerNormBackward: LAYERNORM_BACKWARD_WGSL,
  layerNormParamGrad: LAYERNORM_PARAM_GRAD_WGSL,
  columnSum: COLUMN_SUM_WGSL,
  attention: ATTENTION_FORWARD_WGSL,
  attentionBackwardQuery: ATTENTION_BACKWARD_QUERY_WGSL,
  attentionBackwardKey: ATTENTION_BACKWARD_KEY_WGSL,
  patchPositions: PATCH_POSITIONS_WGSL,
  tokenEmbedding: TOKEN_EMBEDDING_WGSL,
  scatterRows: SCATTER_ROWS_WGSL,
  pool: POOL_WGSL,
  unpool: UNPOOL_WGSL,
  l2Norm: L2NORM_FORWARD_WGSL,
  l2NormBackward: L2NORM_BACKWARD_WGSL,
  contrastive: CONTRASTIVE_WGSL,
  adamw: ADAMW_WGSL,
  decoderInput: DECODER_INPUT_WGSL,
  patchLoss: PATCH_LOSS_WGSL,
  sumPartials: SUM_PARTIALS_WGSL,
} as const;
export type KernelName = keyof typeof KERNELS;

const cache = new WeakMap<GPUDevice, Map<KernelName, GPUComputePipeline>>();

/** The pipeline of `name` on `device`, compiled on first use; a shader error names the kernel and Dawn's message. */
export function pipeline(device: GPUDevice, name: KernelName): GPUComputePipeline {
  let byName = cache.get(device);
  if (!byName) cache.set(device, (byName = new Map()));
  let p = byName.get(name);
  if (!p) {
    const module = device.createShaderModule({ code: KERNELS[name], label: name });
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: name });
    byName.set(name, p);
  }
  return p;
}
