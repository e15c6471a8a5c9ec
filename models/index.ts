/**
 * The trainer's public face: everything framework/ and scripts/ may use of models/. The contract is TrainConfig in,
 * TrainResult (and events) out. What is exported here directly is light (no TensorFlow.js); the training side, with
 * single steps for the benchmarks, comes through loadTrainer(). Nothing in models/ imports framework/.
 */

// The config contract: types, defaults, presets, resolution, and the trainer's own checks of a config.
export {
  DEFAULTS,
  DEFAULT_STEPS,
  PRESETS,
  PRESET_NAMES,
  deepMerge,
  resolveConfig,
  type BackendName,
  type DatasetName,
  type DeepPartial,
  type InferenceMode,
  type PartialTrainConfig,
  type TextMaskStrategy,
  type TokenizerName,
  type TrainConfig,
} from './config.js';
export { checkConfig } from './check-config.js';
// The one declaration of every config field, from which framework/spec generates the JSON Schema and the reference.
export { CONFIG_FIELDS, RESULT_NEUTRAL_PATHS } from './config-fields.js';
export { allowedText, leaves, meaning, type Field, type LeafField } from './config-field-kinds.js';
export { ConfigError, TrainingStopped, type StartInfo, type TrainEvents, type TrainResult } from './events.js';
export { estimateTrainCost, type TrainCost } from './flops.js';
export { loadDataset } from './data/load.js';
export { resumeDirOf } from './resume-dir.js';
export type { Dataset, Example } from './data/dataset.js';
export { makeRng } from './random.js';
export { ADDON_PATH, loadNativeAddon } from './kernels/native/addon.js';

// Types of the training side.
export type { Engine, EngineName, StepOutput } from './engine/engine.js';
export type { FlipModel } from './flip-model.js';
export type { AdamW } from './optimizer.js';

/** The training side: train(), checkpoint evaluation, backends, and single steps (model, engine, batch, step). */
export type Trainer = typeof import('./trainer.js');
export function loadTrainer(): Promise<Trainer> {
  return import('./trainer.js');
}
