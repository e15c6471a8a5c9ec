/**
 * TrainConfig: the one contract between framework/ (sweeps, storage) and models/ (the trainer).
 *
 * The type and DEFAULTS are derived from the declaration in models/config-fields.ts, which the JSON Schema, the
 * trainer's checks and the config reference are derived from too, so none of them can drift from another.
 * Resolution order: DEFAULTS <- the named model preset <- what the user wrote.
 */
import { defaultsOf, type ValueOf } from './config-field-kinds.js';
import { CONFIG_FIELDS } from './config-fields.js';
import { PRESET_NAMES, PRESETS } from './presets.js';

export { PRESET_NAMES, PRESETS };

export type TrainConfig = ValueOf<typeof CONFIG_FIELDS>;

export type BackendName = TrainConfig['backend'];
export type DatasetName = TrainConfig['data']['dataset'];
export type TokenizerName = TrainConfig['model']['text']['tokenizer'];
export type TextMaskStrategy = TrainConfig['mask']['text_strategy'];
export type InferenceMode = TrainConfig['eval']['inference'];
/** Width, depth, heads and MLP ratio: the shape every transformer of the model shares. */
export type TransformerShape = TrainConfig['model']['decoder'];
export type ImageEncoderConfig = TrainConfig['model']['image'];
export type TextEncoderConfig = TrainConfig['model']['text'];

/** A config as a user writes it: any field may be left out. */
export type PartialTrainConfig = DeepPartial<TrainConfig>;
export type DeepPartial<T> = T extends (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Every default, read from the declaration. The default model is the 'small' preset (the reference step of the benchmark). */
export const DEFAULTS: TrainConfig = defaultsOf(CONFIG_FIELDS);

/** Steps run when no budget is set. */
export const DEFAULT_STEPS = 100;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where arrays and scalars from `over` replace those in `base`. Inputs are not modified. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = k in out ? deepMerge(out[k], v) : v;
  }
  return out as T;
}

/** DEFAULTS <- preset <- user values. Checks, of each field and across fields, are models/check-config.ts. */
export function resolveConfig(partial: PartialTrainConfig): TrainConfig {
  const presetName = partial.model?.preset ?? DEFAULTS.model.preset;
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`model.preset: unknown preset "${presetName}"; known presets: ${PRESET_NAMES.join(', ')}`);
  const withPreset = deepMerge(DEFAULTS, { model: { ...preset, preset: presetName } });
  return deepMerge(withPreset, partial);
}
