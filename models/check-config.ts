/**
 * Cross-field checks of a resolved TrainConfig, before anything runs. Pure: no tensors, no data loading.
 * Each problem starts with the dotted config key, then what was found and what is allowed.
 */
import type { TrainConfig } from './config.js';
import { DEFAULT_STEPS, PRESETS } from './config.js';

const BACKENDS = ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow'];
const DATASETS = ['shapes', 'emoji', 'fashion-mnist', 'folder', 'webdataset'];
const TOKENIZERS = ['word', 'clip-bpe'];
const TEXT_STRATEGIES = ['random', 'prioritized', 'truncate'];
const INFERENCE = ['unmasked', 'masked', 'ensemble'];

export function checkConfig(config: TrainConfig): string[] {
  const problems: string[] = [];
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  const intAtLeast = (key: string, v: unknown, min: number) => {
    if (!isInt(v) || v < min) problems.push(`${key}: ${String(v)} must be an integer >= ${min}`);
  };
  const positive = (key: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) problems.push(`${key}: ${String(v)} must be a number > 0`);
  };
  const ratio = (key: string, v: unknown) => {
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) problems.push(`${key}: ${String(v)} is out of range; allowed [0, 1)`);
  };
  const oneOf = (key: string, v: unknown, allowed: string[]) => {
    if (typeof v !== 'string' || !allowed.includes(v)) problems.push(`${key}: "${String(v)}" is not one of ${allowed.join(', ')}`);
  };
  const optionalPositive = (key: string, v: unknown) => {
    if (v !== null && v !== undefined) positive(key, v);
  };

  if (!isInt(config.seed)) problems.push(`seed: ${String(config.seed)} must be an integer`);
  oneOf('backend', config.backend, BACKENDS);

  const d = config.data;
  oneOf('data.dataset', d.dataset, DATASETS);
  intAtLeast('data.train_size', d.train_size, 1);
  intAtLeast('data.eval_size', d.eval_size, 1);
  intAtLeast('data.image_size', d.image_size, 1);
  if (d.dataset === 'folder' && !d.path) problems.push(`data.path: ${String(d.path)}; dataset 'folder' needs a folder or JSONL file`);
  if (d.dataset === 'webdataset') {
    for (const key of ['train', 'val'] as const) {
      if (typeof d[key] !== 'string' || d[key]!.trim() === '') problems.push(`data.${key}: ${JSON.stringify(d[key])}; dataset 'webdataset' needs a shard pattern such as "shards/{000000..000009}.tar"`);
    }
  }
  if (d.classnames != null && (!Array.isArray(d.classnames) || d.classnames.length === 0)) {
    problems.push(`data.classnames: ${JSON.stringify(d.classnames)} must be null or a non-empty list of class names`);
  }

  const m = config.model;
  if (!(m.preset in PRESETS)) problems.push(`model.preset: unknown preset "${m.preset}"; known presets: ${Object.keys(PRESETS).join(', ')}`);
  intAtLeast('model.embed_dim', m.embed_dim, 1);
  for (const [tower, shape] of [['image', m.image], ['text', m.text]] as const) {
    intAtLeast(`model.${tower}.width`, shape.width, 1);
    intAtLeast(`model.${tower}.depth`, shape.depth, 1);
    intAtLeast(`model.${tower}.heads`, shape.heads, 1);
    positive(`model.${tower}.mlp_ratio`, shape.mlp_ratio);
    if (isInt(shape.width) && isInt(shape.heads) && shape.heads > 0 && shape.width % shape.heads !== 0) {
      problems.push(`model.${tower}.heads: ${shape.heads} does not divide width ${shape.width}`);
    }
  }
  if (isInt(m.image.width) && m.image.width % 4 !== 0) problems.push(`model.image.width: ${m.image.width} must be a multiple of 4 (2-D sin-cos positions)`);
  intAtLeast('model.image.patch_size', m.image.patch_size, 1);
  if (isInt(m.image.patch_size) && m.image.patch_size > 0 && isInt(d.image_size) && d.image_size % m.image.patch_size !== 0) {
    problems.push(`model.image.patch_size: ${m.image.patch_size} does not divide data.image_size ${d.image_size}`);
  }
  intAtLeast('model.text.context_length', m.text.context_length, 2);
  oneOf('model.text.tokenizer', m.text.tokenizer, TOKENIZERS);
  intAtLeast('model.text.vocab_size', m.text.vocab_size, 4);

  ratio('mask.image_ratio', config.mask.image_ratio);
  ratio('mask.text_ratio', config.mask.text_ratio);
  oneOf('mask.text_strategy', config.mask.text_strategy, TEXT_STRATEGIES);
  // Text masking keeps max(1, floor(T (1 - r))) tokens, the start token (where the encoder pools) among them; with
  // fewer than 2 the encoder would see the start token alone, whatever the caption.
  const ctx = m.text.context_length;
  const tr = config.mask.text_ratio;
  if (isInt(ctx) && ctx >= 2 && typeof tr === 'number' && tr > 0 && tr < 1) {
    const kept = Math.max(1, Math.floor(ctx * (1 - tr) + 1e-9));
    if (kept < 2) {
      problems.push(`mask.text_ratio: ${tr} keeps ${kept} of ${ctx} tokens (floor(${ctx} x (1 - ${tr}))), only the start token; at least 2 are needed, allowed <= ${+(1 - 2 / ctx).toFixed(4)}`);
    }
  }

  if (typeof config.loss.reconstruction_weight !== 'number' || config.loss.reconstruction_weight < 0) {
    problems.push(`loss.reconstruction_weight: ${String(config.loss.reconstruction_weight)} must be >= 0`);
  } else if (config.loss.reconstruction_weight > 0) {
    if (config.mask.image_ratio === 0) {
      problems.push(`loss.reconstruction_weight: ${config.loss.reconstruction_weight} with mask.image_ratio 0: no patch is removed, nothing to reconstruct; allowed 0 on an unmasked run, or set mask.image_ratio > 0`);
    }
    const dec = m.decoder;
    intAtLeast('model.decoder.width', dec.width, 1);
    intAtLeast('model.decoder.depth', dec.depth, 1);
    intAtLeast('model.decoder.heads', dec.heads, 1);
    positive('model.decoder.mlp_ratio', dec.mlp_ratio);
    if (isInt(dec.width) && isInt(dec.heads) && dec.heads > 0 && dec.width % dec.heads !== 0) problems.push(`model.decoder.heads: ${dec.heads} does not divide width ${dec.width}`);
    if (isInt(dec.width) && dec.width % 4 !== 0) problems.push(`model.decoder.width: ${dec.width} must be a multiple of 4 (2-D sin-cos positions)`);
  }

  const t = config.train;
  intAtLeast('train.batch_size', t.batch_size, 2);
  if (isInt(t.batch_size) && isInt(d.train_size) && t.batch_size > d.train_size) {
    problems.push(`train.batch_size: ${t.batch_size} is bigger than data.train_size ${d.train_size}`);
  }
  if (t.steps !== null && t.steps !== undefined) intAtLeast('train.steps', t.steps, 1);
  if (t.samples !== null && t.samples !== undefined) intAtLeast('train.samples', t.samples, 1);
  optionalPositive('train.epochs', t.epochs);
  optionalPositive('train.time_budget_s', t.time_budget_s);
  positive('train.base_lr', t.base_lr);
  optionalPositive('train.lr', t.lr);
  if (typeof t.warmup !== 'number' || !(t.warmup >= 0)) problems.push(`train.warmup: ${String(t.warmup)} must be >= 0 (steps when >= 1, a share of the budget when < 1)`);
  if (typeof t.weight_decay !== 'number' || !(t.weight_decay >= 0)) problems.push(`train.weight_decay: ${String(t.weight_decay)} must be >= 0`);
  ratio('train.beta1', t.beta1);
  ratio('train.beta2', t.beta2);
  positive('train.eps', t.eps);

  // Unmasked tuning is a short phase after pre-training (the paper: 0.32 epoch after 6.4, a 5% share): at most as long
  // as pre-training. tune.fraction is a share of the pre-training steps run, in [0, 1]; tune.steps is compared with the
  // pre-training steps that train.steps / samples / epochs (or the default DEFAULT_STEPS) allow.
  const tune = config.tune;
  if (tune.steps != null) intAtLeast('tune.steps', tune.steps, 0);
  if (tune.fraction != null && (typeof tune.fraction !== 'number' || !(tune.fraction >= 0 && tune.fraction <= 1))) {
    problems.push(`tune.fraction: ${String(tune.fraction)} is out of range; allowed [0, 1] (a share of the pre-training steps; tuning may be at most as long as pre-training)`);
  }
  if (tune.steps != null && tune.fraction != null) problems.push(`tune.steps: ${tune.steps} and tune.fraction ${tune.fraction} are both set; set one`);
  const pretrainSteps = plannedPretrainSteps(config);
  if (isInt(tune.steps) && pretrainSteps != null && tune.steps > pretrainSteps) {
    problems.push(`tune.steps: ${tune.steps} is more than the ${pretrainSteps} pre-training steps the budget allows; allowed <= ${pretrainSteps} (tuning may be at most as long as pre-training)`);
  }
  const tuning = (tune.steps ?? 0) > 0 || (tune.fraction ?? 0) > 0;
  if (!tuning && tune.base_lr != null) {
    problems.push(`tune.base_lr: ${String(tune.base_lr)} is set but unmasked tuning is off (tune.steps ${String(tune.steps)}, tune.fraction ${String(tune.fraction)}); set tune.steps or tune.fraction, or leave tune.base_lr null`);
  }
  optionalPositive('tune.base_lr', tune.base_lr);
  if (typeof tune.warmup !== 'number' || !(tune.warmup >= 0)) problems.push(`tune.warmup: ${String(tune.warmup)} must be >= 0`);

  const e = config.eval;
  intAtLeast('eval.every', e.every, 0);
  intAtLeast('eval.batch_size', e.batch_size, 1);
  oneOf('eval.inference', e.inference, INFERENCE);
  if (e.templates !== 'dataset') {
    if (!Array.isArray(e.templates) || e.templates.length === 0) {
      problems.push(`eval.templates: must be 'dataset' or a non-empty list of templates, got ${JSON.stringify(e.templates)}`);
    } else {
      e.templates.forEach((tpl, i) => {
        if (typeof tpl !== 'string' || !tpl.includes('{}')) problems.push(`eval.templates[${i}]: "${String(tpl)}" has no '{}' for the class name`);
      });
    }
  }
  return problems;
}

/**
 * Pre-training steps allowed by the step / sample / epoch budgets (the smallest), DEFAULT_STEPS with no budget at all,
 * null when only a time budget is set (unknown before running). Invalid budgets give null; they are reported above.
 */
export function plannedPretrainSteps(config: TrainConfig): number | null {
  const t = config.train;
  const b = t.batch_size;
  if (typeof b !== 'number' || !(b >= 1)) return null;
  const caps: number[] = [];
  if (typeof t.steps === 'number') caps.push(t.steps);
  if (typeof t.samples === 'number') caps.push(Math.ceil(t.samples / b));
  if (typeof t.epochs === 'number') caps.push(Math.ceil((t.epochs * config.data.train_size) / b));
  if (caps.length > 0) return Math.min(...caps);
  return t.time_budget_s == null ? DEFAULT_STEPS : null;
}
