/**
 * Backend selection: 'wasm' (default), 'cpu', 'webgpu' (optional packages `webgpu` + @tensorflow/tfjs-backend-webgpu;
 * models/backends/webgpu.ts), 'tensorflow' (@tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, not dependencies;
 * models/backends/tensorflow.ts). 'auto' tries tensorflow > webgpu on a hardware adapter > wasm and logs each fallback.
 * Optional packages are loaded with dynamic import so a missing one is a clear message, never a crash at load time.
 * The project's own kernels (models/kernels) are registered for wasm and cpu only. GPU machines: docs/gpu.md.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BackendName } from './config.js';
import { ConfigError } from './events.js';
import { registerLoopedBatchMatMul } from './kernels/batch-matmul-wasm.js';
import { registerZeroCopyIdentity } from './kernels/identity-wasm.js';
import { registerBlockedTranspose } from './kernels/transpose-wasm.js';
import { registerRowGather } from './kernels/gather-wasm.js';
import { registerHeapSlice } from './kernels/slice-wasm.js';
import { registerUnsortedSegmentSum } from './kernels/unsorted-segment-sum.js';
import { registerNativeKernels } from './kernels/native/register.js';
import { useTensorflow, type TensorflowOptions } from './backends/tensorflow.js';
import { useWebgpu } from './backends/webgpu.js';

export interface BackendInfo {
  /** Backend actually in use: 'wasm', 'cpu', 'webgpu' or 'tensorflow'. */
  backend: string;
  device: string;
  /** wasm only: whether the native kernel add-on (models/kernels/native) is in use. */
  native?: boolean;
}

const require = createRequire(import.meta.url);

async function useWasm(): Promise<BackendInfo> {
  const mod = await import('@tensorflow/tfjs-backend-wasm');
  // A bundle (scripts/gpu/prepare.sh) exposes this CommonJS package's exports under `default` only.
  const wasm = (typeof mod.setWasmPaths === 'function' ? mod : (mod as unknown as { default: typeof mod }).default) as typeof mod;
  // The package's main file lives in its dist/ folder, beside the .wasm binaries.
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(dist + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
  registerUnsortedSegmentSum('wasm');
  const looped = registerLoopedBatchMatMul();
  registerZeroCopyIdentity();
  registerBlockedTranspose();
  registerRowGather();
  registerHeapSlice();
  const native = registerNativeKernels();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { backend: 'wasm', device: `cpu (wasm${simd ? ' simd' : ''}, 1 thread${looped ? '' : ', generic batched matMul'}; ${native.description})`, native: native.active };
}

async function useCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
  await tf.ready();
  registerUnsortedSegmentSum('cpu');
  return { backend: 'cpu', device: 'cpu (plain JS)' };
}

export interface SelectOptions extends TensorflowOptions {
  /** An explicit 'webgpu' may use a software adapter (llvmpipe, ...); default env FLIP_WEBGPU_SOFTWARE=1. Never for auto. */
  allowSoftwareWebgpu?: boolean;
}

/**
 * Selects the backend, registers the project's kernels on it, and returns what is actually in use. 'auto': tensorflow
 * (when a tfjs-node package loads) > webgpu (a hardware adapter only) > wasm, with one log line per backend skipped and
 * why; a missing or broken optional package never makes it throw.
 */
export async function selectBackend(name: BackendName, log: (msg: string) => void = () => {}, options: SelectOptions = {}): Promise<BackendInfo> {
  switch (name) {
    case 'wasm':
      return useWasm();
    case 'cpu':
      return useCpu();
    case 'webgpu':
      return plain(await useWebgpu({ allowSoftware: options.allowSoftwareWebgpu, log }));
    case 'tensorflow':
      return useTensorflow(options);
    case 'auto': {
      const tries: [string, () => Promise<BackendInfo>][] = [
        ['tensorflow', () => useTensorflow(options)],
        ['webgpu', async () => plain(await useWebgpu({ requireHardware: true, log }))],
      ];
      for (const [label, use] of tries) {
        try {
          return await use();
        } catch (e) {
          log(`backend auto: ${label} unavailable, falling back (${(e as Error).message})`);
        }
      }
      return useWasm();
    }
    default:
      throw new ConfigError('backend', `unknown backend "${name as string}"; allowed: auto, wasm, cpu, webgpu, tensorflow`);
  }
}

function plain(info: { backend: string; device: string }): BackendInfo {
  return { backend: info.backend, device: info.device };
}
