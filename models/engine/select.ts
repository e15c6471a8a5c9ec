/**
 * The one place where the trainer's compute path is chosen, once per job: the layer ops a model is built on and the
 * engine that trains it (models/engine/engine.ts). FLIP_ENGINE=autodiff|native|webgpu overrides the choice
 * (comparisons, benchmarks); by default, on backend webgpu the WebGPU engine trains every model it supports, on wasm
 * the native engine, and the autodiff engine the rest.
 */
import type { TrainConfig } from '../config.js';
import { FlipModel } from '../flip-model.js';
import { loadNativeAddon } from '../kernels/native/addon.js';
import { nativeLayerOps } from '../kernels/native/layer-ops.js';
import { nativeKernelsActive } from '../kernels/native/register.js';
import { plainLayerOps, type LayerOps } from '../nn/layer-ops.js';
import { AutodiffEngine } from './autodiff.js';
import { ENGINE_NAMES, type Engine, type EngineName } from './engine.js';
import { NativeEngine, nativeEngineUnsupported } from './native.js';
import { tfWebgpuBackend } from './webgpu/gpu.js';
import { WebGpuEngine, webgpuEngineUnsupported } from './webgpu/engine.js';

/** The layer ops for a model built now: the native kernels when they are registered on the current backend. */
export function layerOpsForBackend(): LayerOps {
  return nativeKernelsActive() ? nativeLayerOps : plainLayerOps;
}

/** A FlipModel on the current backend's layer ops. */
export function buildModel(config: TrainConfig, vocabSize: number, padId: number): FlipModel {
  return new FlipModel(config, vocabSize, padId, layerOpsForBackend());
}

/** FLIP_ENGINE, checked: an engine name or null (unset: choose). */
export function requestedEngine(env: NodeJS.ProcessEnv = process.env): EngineName | null {
  const v = env.FLIP_ENGINE;
  if (v == null || v === '' || v === 'auto') return null;
  if (!(ENGINE_NAMES as readonly string[]).includes(v)) throw new Error(`FLIP_ENGINE="${v}" is not an engine; use one of: auto, ${ENGINE_NAMES.join(', ')}`);
  return v as EngineName;
}

/** The engine for `model` (built by buildModel on the backend now selected); says which and why through log. */
export function createEngine(model: FlipModel, log: (msg: string) => void = () => {}): Engine {
  const requested = requestedEngine();
  const addon = nativeKernelsActive() ? loadNativeAddon().addon : null;
  const webgpu = tfWebgpuBackend();
  if (requested === 'webgpu' || (requested === null && webgpu)) {
    const why = webgpuEngineUnsupported(model);
    if (webgpu && !why) {
      log(`engine: webgpu (the project's WGSL step on the webgpu backend's device, one submit per step)`);
      return new WebGpuEngine(model, webgpu);
    }
    if (requested === 'webgpu') throw new Error(`FLIP_ENGINE=webgpu: the WebGPU engine cannot train this model: ${why}`);
    log(`engine: autodiff on ${model.ops.name} layer ops (the WebGPU engine cannot train this model: ${why})`);
    return new AutodiffEngine(model, addon);
  }
  const unsupported = addon ? nativeEngineUnsupported(model) : 'the native kernels are not loaded';
  if (requested === 'native' && unsupported) throw new Error(`FLIP_ENGINE=native: the native engine cannot train this model: ${unsupported}`);
  if (addon && !unsupported && requested !== 'autodiff') {
    log('engine: native (the engine-free step on the native kernels)');
    return new NativeEngine(model, addon);
  }
  const why = requested === 'autodiff' ? 'FLIP_ENGINE=autodiff' : (unsupported as string);
  log(`engine: autodiff on ${model.ops.name} layer ops (${why})`);
  return new AutodiffEngine(model, addon);
}
