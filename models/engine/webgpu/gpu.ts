/// <reference types="@webgpu/types" />
/**
 * What the WebGPU engine needs of a device, in one place: the GPUDevice that tfjs-backend-webgpu already holds (the
 * engine shares it, so tensors handed to the trainer live on the same device as the engine's buffers), the usage
 * flags as numbers (WebGPU fixes their values; Dawn's globals are only installed once the backend loads), and the
 * split of large workgroup counts over two grid dimensions (each is at most 65,535).
 */
import * as tf from '@tensorflow/tfjs';

export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_READ_MODE = 0x1;

/** Storage buffers the engine reads and writes; COPY_SRC so that tfjs can take one over as a tensor's data. */
export const STORAGE_USAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;

/** The parts of tfjs-backend-webgpu's WebGPUBackend used here. */
export interface TfWebgpuBackend extends tf.KernelBackend {
  device: GPUDevice;
  /** Submits tfjs's pending commands (so that ours, submitted after, see their results). */
  submitQueue(): void;
}

/** The active tfjs backend when it is tfjs-backend-webgpu, else null. */
export function tfWebgpuBackend(): TfWebgpuBackend | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const b = tf.backend() as Partial<TfWebgpuBackend>;
  return b.device && typeof b.submitQueue === 'function' ? (b as TfWebgpuBackend) : null;
}

export const MAX_GRID = 65535;

/** Workgroup counts [x, y, 1] covering `groups` workgroups; kernels index them as x + y * num_workgroups.x. */
export function grid(groups: number): [number, number, number] {
  if (groups <= MAX_GRID) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / MAX_GRID);
  if (y > MAX_GRID) throw new Error(`webgpu engine: ${groups} workgroups exceed a ${MAX_GRID} x ${MAX_GRID} grid`);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL: the linear workgroup index of a grid() dispatch. */
export const WG_LINEAR = 'fn wgLinear(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }';

/**
 * A buffer of `bytes` (at least 4) on `device`, refused with the reason when the device cannot bind one that large
 * (maxStorageBufferBindingSize, maxBufferSize): the plan binds every buffer whole.
 */
export function createBuffer(device: GPUDevice, bytes: number, label: string, usage: number = STORAGE_USAGE): GPUBuffer {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const max = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  if (size > max) {
    throw new Error(`webgpu engine: buffer '${label}' needs ${size} bytes, more than this device binds (${max}); use a smaller train.batch_size or model`);
  }
  return device.createBuffer({ size, usage, label });
}
