/**
 * TrainConfig: the one contract between framework/ (sweeps, storage) and models/ (the trainer).
 *
 * Every field has its default in DEFAULTS below; framework/spec/experiment.schema.json describes the same fields
 * for validation and editors, and test/config-schema.test.ts proves the two agree.
 * Resolution order: DEFAULTS <- the named model preset <- what the user wrote.
 */

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu' | 'tensorflow';
export type DatasetName = 'shapes' | 'emoji' | 'fashion-mnist' | 'folder' | 'webdataset';
export type TokenizerName = 'word' | 'clip-bpe';
export type TextMaskStrategy = 'random' | 'prioritized' | 'truncate';
export type InferenceMode = 'unmasked' | 'masked' | 'ensemble';

export interface TransformerShape {
  /** Token width. */
  width: number;
  /** Number of pre-LN transformer blocks. */
  depth: number;
  /** Attention heads; must divide width. */
  heads: number;
  /** MLP hidden width = mlp_ratio x width. */
  mlp_ratio: number;
}

export interface ImageEncoderConfig extends TransformerShape {
  /** Side of a square patch in pixels; must divide data.image_size. */
  patch_size: number;
}

export interface TextEncoderConfig extends TransformerShape {
  /** Tokens per caption, start and end tokens included; longer captions are cut. */
  context_length: number;
  /** 'word': a vocabulary built from the training captions; 'clip-bpe': CLIP's 49,408-token BPE. */
  tokenizer: TokenizerName;
  /** Largest word vocabulary (most frequent words kept); ignored by clip-bpe. */
  vocab_size: number;
}

export interface TrainConfig {
  /** Seeds data order, weight init, masking noise. */
  seed: number;
  /** Tensor backend; 'auto' picks tensorflow > webgpu (GPU adapter) > wasm. */
  backend: BackendName;
  data: {
    dataset: DatasetName;
    /** Training pairs used (the data-scaling axis). */
    train_size: number;
    /** Held-out pairs for evaluation. */
    eval_size: number;
    /** Images are resized to image_size x image_size x 3. */
    image_size: number;
    /** Folder or JSONL file for dataset 'folder' (or a custom location for fashion-mnist). */
    path: string | null;
    /** Shard patterns of dataset 'webdataset' ('shards/{000000..000099}.tar'; '::' joins several). */
    train: string | null;
    val: string | null;
    /** Zero-shot class names of dataset 'webdataset', indexed by the samples' KEY.cls; null: no zero-shot. */
    classnames: string[] | null;
  };
  model: {
    /** Named size; its values apply before the fields written here. */
    preset: string;
    /** Width of the shared image-text embedding. */
    embed_dim: number;
    image: ImageEncoderConfig;
    text: TextEncoderConfig;
    /** MAE decoder, only built when loss.reconstruction_weight > 0. */
    decoder: TransformerShape;
  };
  mask: {
    /** Share of image patches dropped per sample during training, in [0, 1). */
    image_ratio: number;
    /** Share of text tokens dropped during training, in [0, 1). */
    text_ratio: number;
    text_strategy: TextMaskStrategy;
  };
  loss: {
    /** Weight of the MAE pixel reconstruction loss; 0 = off. */
    reconstruction_weight: number;
  };
  train: {
    batch_size: number;
    /** Budgets: training stops at the first one reached; with none set it runs 100 steps. */
    steps: number | null;
    samples: number | null;
    epochs: number | null;
    time_budget_s: number | null;
    /** lr = base_lr x batch_size / 256 unless lr is set. */
    base_lr: number;
    lr: number | null;
    /** Linear warm-up: steps when >= 1, a share of the budget when < 1. */
    warmup: number;
    weight_decay: number;
    beta1: number;
    beta2: number;
    eps: number;
  };
  tune: {
    /** Unmasked tuning after pre-training: a number of steps, or a share of the pre-training steps. */
    steps: number | null;
    fraction: number | null;
    /** Defaults to train.base_lr / 100. */
    base_lr: number | null;
    warmup: number;
  };
  eval: {
    /** Evaluate every N training steps (0 = only at the end). */
    every: number;
    /** 'dataset': the dataset's own prompt templates; or a list of templates with '{}' for the class name. */
    templates: 'dataset' | string[];
    inference: InferenceMode;
    batch_size: number;
  };
}

/** A config as a user writes it: any field may be left out. */
export type PartialTrainConfig = DeepPartial<TrainConfig>;
export type DeepPartial<T> = T extends (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Model presets. CPU sizes keep the paper's proportions (heads = width / 32 here, text as wide as the image tower at
 * small sizes); B/16, L/16 and H/14 are Table 9 of the paper, for GPU users. */
export const PRESETS: Record<string, DeepPartial<TrainConfig['model']> & { image_size?: number }> = {
  tiny: {
    embed_dim: 64,
    image: { patch_size: 4, width: 64, depth: 2, heads: 2, mlp_ratio: 4 },
    text: { width: 64, depth: 2, heads: 2, mlp_ratio: 4 },
    decoder: { width: 64, depth: 1, heads: 2, mlp_ratio: 4 },
  },
  mini: {
    embed_dim: 96,
    image: { patch_size: 4, width: 96, depth: 3, heads: 3, mlp_ratio: 4 },
    text: { width: 96, depth: 3, heads: 3, mlp_ratio: 4 },
    decoder: { width: 64, depth: 1, heads: 2, mlp_ratio: 4 },
  },
  small: {
    embed_dim: 128,
    image: { patch_size: 4, width: 128, depth: 4, heads: 4, mlp_ratio: 4 },
    text: { width: 128, depth: 4, heads: 4, mlp_ratio: 4 },
    decoder: { width: 96, depth: 2, heads: 3, mlp_ratio: 4 },
  },
  medium: {
    embed_dim: 192,
    image: { patch_size: 4, width: 256, depth: 6, heads: 8, mlp_ratio: 4 },
    text: { width: 192, depth: 6, heads: 6, mlp_ratio: 4 },
    decoder: { width: 128, depth: 2, heads: 4, mlp_ratio: 4 },
  },
  'B/16': {
    embed_dim: 512,
    image: { patch_size: 16, width: 768, depth: 12, heads: 12, mlp_ratio: 4 },
    text: { width: 512, depth: 12, heads: 8, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
  'L/16': {
    embed_dim: 768,
    image: { patch_size: 16, width: 1024, depth: 24, heads: 16, mlp_ratio: 4 },
    text: { width: 768, depth: 12, heads: 12, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
  'H/14': {
    embed_dim: 1024,
    image: { patch_size: 14, width: 1280, depth: 32, heads: 16, mlp_ratio: 4 },
    text: { width: 1024, depth: 24, heads: 16, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
};
export const PRESET_NAMES = Object.keys(PRESETS);

/** Every default in one place. The default model is the 'small' preset (the reference step of the benchmark). */
export const DEFAULTS: TrainConfig = {
  seed: 0,
  backend: 'wasm',
  data: { dataset: 'shapes', train_size: 2048, eval_size: 256, image_size: 32, path: null, train: null, val: null, classnames: null },
  model: {
    preset: 'small',
    embed_dim: 128,
    image: { patch_size: 4, width: 128, depth: 4, heads: 4, mlp_ratio: 4 },
    text: { width: 128, depth: 4, heads: 4, mlp_ratio: 4, context_length: 16, tokenizer: 'word', vocab_size: 1000 },
    decoder: { width: 96, depth: 2, heads: 3, mlp_ratio: 4 },
  },
  mask: { image_ratio: 0, text_ratio: 0, text_strategy: 'random' },
  loss: { reconstruction_weight: 0 },
  train: {
    batch_size: 64,
    steps: null,
    samples: null,
    epochs: null,
    time_budget_s: null,
    base_lr: 1e-3,
    lr: null,
    warmup: 0.1,
    weight_decay: 0.2,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
  },
  tune: { steps: null, fraction: null, base_lr: null, warmup: 0.1 },
  eval: { every: 0, templates: 'dataset', inference: 'unmasked', batch_size: 128 },
};

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

/** DEFAULTS <- preset <- user values. Shape checks belong to the schema; cross-field checks to models/check-config. */
export function resolveConfig(partial: PartialTrainConfig): TrainConfig {
  const presetName = partial.model?.preset ?? DEFAULTS.model.preset;
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`model.preset: unknown preset "${presetName}"; known presets: ${PRESET_NAMES.join(', ')}`);
  const withPreset = deepMerge(DEFAULTS, { model: { ...preset, preset: presetName } });
  return deepMerge(withPreset, partial);
}
