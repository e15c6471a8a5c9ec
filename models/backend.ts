/**
 * Backend selection: 'wasm' (default), 'cpu', 'webgpu' (needs the npm `webgpu` package), 'tensorflow'
 * (@tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node). 'auto' tries tensorflow > webgpu > wasm and logs each fallback.
 * Optional packages are loaded with dynamic import so a missing one is a clear message, never a crash at load time.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BackendName } from './config.js';
import { ConfigError } from './events.js';
import { registerLoopedBatchMatMul } from './kernels/batch-matmul-wasm.js';
import { registerZeroCopyIdentity } from './kernels/identity-wasm.js';
import { registerBlockedTranspose } from './kernels/transpose-wasm.js';
import { registerUnsortedSegmentSum } from './kernels/unsorted-segment-sum.js';

export interface BackendInfo {
  /** Backend actually in use: 'wasm', 'cpu', 'webgpu' or 'tensorflow'. */
  backend: string;
  device: string;
}

const require = createRequire(import.meta.url);

/** Imports a module by a name held in a variable, so TypeScript does not require it to be installed. */
async function optionalImport(name: string): Promise<Record<string, unknown>> {
  return (await import(name)) as Record<string, unknown>;
}

async function useWasm(): Promise<BackendInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // The package's main file lives in its dist/ folder, beside the .wasm binaries.
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(dist + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
  registerUnsortedSegmentSum('wasm');
  const looped = registerLoopedBatchMatMul();
  registerZeroCopyIdentity();
  registerBlockedTranspose();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { backend: 'wasm', device: `cpu (wasm${simd ? ' simd' : ''}, 1 thread${looped ? '' : ', generic batched matMul'})` };
}

async function useCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
  await tf.ready();
  registerUnsortedSegmentSum('cpu');
  return { backend: 'cpu', device: 'cpu (plain JS)' };
}

async function useWebgpu(): Promise<BackendInfo> {
  let gpuModule: Record<string, unknown>;
  try {
    gpuModule = await optionalImport('webgpu');
  } catch (e) {
    throw new Error(`backend 'webgpu' needs the npm package "webgpu" (Dawn for Node), which is not installed: ${(e as Error).message}`);
  }
  try {
    const g = globalThis as Record<string, unknown>;
    const create = gpuModule.create as ((opts: string[]) => unknown) | undefined;
    if (create && !(g.navigator as { gpu?: unknown } | undefined)?.gpu) {
      Object.assign(globalThis, gpuModule.globals ?? {});
      const gpu = create([]);
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    }
    await optionalImport('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`backend 'webgpu': could not set up Dawn / @tensorflow/tfjs-backend-webgpu: ${(e as Error).message}`);
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error("backend 'webgpu': no GPU adapter found (tf.setBackend('webgpu') returned false)");
  await tf.ready();
  return { backend: 'webgpu', device: 'webgpu adapter' };
}

async function useTensorflow(): Promise<BackendInfo> {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await optionalImport(pkg);
      if (!(await tf.setBackend('tensorflow'))) throw new Error("tf.setBackend('tensorflow') returned false");
      await tf.ready();
      return { backend: 'tensorflow', device: pkg.endsWith('gpu') ? 'libtensorflow (gpu build)' : 'libtensorflow (cpu)' };
    } catch (e) {
      errors.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (with libtensorflow); ${errors.join('; ')}`);
}

/** Selects the backend, registers the project's kernels on it, and returns what is actually in use. */
export async function selectBackend(name: BackendName, log: (msg: string) => void = () => {}): Promise<BackendInfo> {
  switch (name) {
    case 'wasm':
      return useWasm();
    case 'cpu':
      return useCpu();
    case 'webgpu':
      return useWebgpu();
    case 'tensorflow':
      return useTensorflow();
    case 'auto': {
      for (const [label, use] of [['tensorflow', useTensorflow], ['webgpu', useWebgpu]] as const) {
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
