/**
 * Counts what a WebGPU step asks of the device: compute dispatches, queue submits and buffers created. It wraps the
 * methods of the live device, its queue and the command encoders and passes made while it runs, so every caller on
 * that device is counted (this engine and tfjs-backend-webgpu alike). For the call budget in tests and the bench;
 * not for production runs.
 */
import { tfWebgpuBackend } from './gpu.js';

export interface GpuCallCounts {
  dispatches: number;
  submits: number;
  buffers_created: number;
}

export class GpuCallCounter {
  private readonly counts: GpuCallCounts = { dispatches: 0, submits: 0, buffers_created: 0 };
  private readonly restores: (() => void)[] = [];

  constructor(device: GPUDevice) {
    const c = this.counts;
    this.wrap(device, 'createBuffer', (orig) => function (this: GPUDevice, d: GPUBufferDescriptor) {
      c.buffers_created++;
      return orig.call(this, d);
    });
    const queue = device.queue;
    this.wrap(queue, 'submit', (orig) => function (this: GPUQueue, bufs: Iterable<GPUCommandBuffer>) {
      c.submits++;
      return orig.call(this, bufs);
    });
    this.wrap(device, 'createCommandEncoder', (orig) => function (this: GPUDevice, d?: GPUCommandEncoderDescriptor) {
      const encoder = orig.call(this, d) as GPUCommandEncoder;
      const begin = encoder.beginComputePass;
      encoder.beginComputePass = function (this: GPUCommandEncoder, pd?: GPUComputePassDescriptor) {
        const pass = begin.call(this, pd);
        const dispatch = pass.dispatchWorkgroups;
        pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
          c.dispatches++;
          return dispatch.call(this, x, y, z);
        };
        const indirect = pass.dispatchWorkgroupsIndirect;
        pass.dispatchWorkgroupsIndirect = function (this: GPUComputePassEncoder, b: GPUBuffer, o: number) {
          c.dispatches++;
          return indirect.call(this, b, o);
        };
        return pass;
      };
      return encoder;
    });
  }

  /** The counts so far. */
  snapshot(): GpuCallCounts {
    return { ...this.counts };
  }

  /** The device's own methods back. */
  restore(): void {
    while (this.restores.length) this.restores.pop()!();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private wrap<T extends object>(target: T, name: keyof T & string, make: (orig: any) => any): void {
    const own = Object.prototype.hasOwnProperty.call(target, name);
    const previous = (target as Record<string, unknown>)[name];
    (target as Record<string, unknown>)[name] = make(previous);
    this.restores.push(() => {
      if (own) (target as Record<string, unknown>)[name] = previous;
      else delete (target as Record<string, unknown>)[name];
    });
  }
}

/** Calls made on the active webgpu backend's device while fn runs; null when the backend is not webgpu. */
export async function countGpuCalls(fn: () => Promise<void>): Promise<GpuCallCounts | null> {
  const backend = tfWebgpuBackend();
  if (!backend) {
    await fn();
    return null;
  }
  const counter = new GpuCallCounter(backend.device);
  try {
    await fn();
    return counter.snapshot();
  } finally {
    counter.restore();
  }
}
