/**
 * The trainer's checks of a resolved TrainConfig, before anything runs. Pure: no tensors, no data loading.
 * Each field's own bounds come from its declaration (models/config-fields.ts), the same bounds the JSON Schema states;
 * the rules that relate fields to each other are all in crossFieldProblems below.
 * Each problem starts with the dotted config key, then what was found and what is allowed.
 */
import { fieldProblem, leaves } from './config-field-kinds.js';
import { CONFIG_FIELDS } from './config-fields.js';
import type { TrainConfig, TransformerShape } from './config.js';
import { DEFAULT_STEPS } from './config.js';

const DECLARED = leaves(CONFIG_FIELDS);

export function checkConfig(config: TrainConfig): string[] {
  return [...boundProblems(config), ...crossFieldProblems(config)];
}

/** Each field against its declared type, bounds and allowed values. */
export function boundProblems(config: TrainConfig): string[] {
  const problems: string[] = [];
  for (const { path, field } of DECLARED) {
    const value = path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), config);
    const problem = fieldProblem(path, field, value);
    if (problem) problems.push(problem);
  }
  return problems;
}

/** Rules between fields. Each skips values of the wrong type, which boundProblems reports. */
export function crossFieldProblems(config: TrainConfig): string[] {
  const problems: string[] = [];
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  const d = config.data;
  const m = config.model;
  if (d.dataset === 'folder' && !d.path) problems.push(`data.path: ${String(d.path)}; dataset 'folder' needs a folder or JSONL file`);
  if (d.dataset === 'webdataset') {
    for (const key of ['train', 'val'] as const) {
      if (!d[key]) problems.push(`data.${key}: ${JSON.stringify(d[key])}; dataset 'webdataset' needs a shard pattern such as "shards/{000000..000009}.tar"`);
    }
  }

  // The decoder is built only with a reconstruction loss, so its heads need to divide its width only then.
  const towers: [string, TransformerShape][] = [['image', m.image], ['text', m.text]];
  if (config.loss.reconstruction_weight > 0) towers.push(['decoder', m.decoder]);
  for (const [tower, shape] of towers) {
    if (isInt(shape.width) && isInt(shape.heads) && shape.heads > 0 && shape.width % shape.heads !== 0) {
      problems.push(`model.${tower}.heads: ${shape.heads} does not divide width ${shape.width}`);
    }
  }
  if (isInt(m.image.patch_size) && m.image.patch_size > 0 && isInt(d.image_size) && d.image_size % m.image.patch_size !== 0) {
    problems.push(`model.image.patch_size: ${m.image.patch_size} does not divide data.image_size ${d.image_size}`);
  }

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

  if (typeof config.loss.reconstruction_weight === 'number' && config.loss.reconstruction_weight > 0 && config.mask.image_ratio === 0) {
    problems.push(`loss.reconstruction_weight: ${config.loss.reconstruction_weight} with mask.image_ratio 0: no patch is removed, nothing to reconstruct; allowed 0 on an unmasked run, or set mask.image_ratio > 0`);
  }

  const t = config.train;
  if (isInt(t.batch_size) && isInt(d.train_size) && t.batch_size > d.train_size) {
    problems.push(`train.batch_size: ${t.batch_size} is bigger than data.train_size ${d.train_size}`);
  }

  // Unmasked tuning is a short phase after pre-training (the paper: 0.32 epoch after 6.4, a 5% share): at most as long
  // as pre-training. tune.fraction is bounded by its declaration; tune.steps is compared with the pre-training steps
  // that train.steps / samples / epochs (or the default DEFAULT_STEPS) allow.
  const tune = config.tune;
  if (tune.steps != null && tune.fraction != null) problems.push(`tune.steps: ${tune.steps} and tune.fraction ${tune.fraction} are both set; set one`);
  const pretrainSteps = plannedPretrainSteps(config);
  if (isInt(tune.steps) && pretrainSteps != null && tune.steps > pretrainSteps) {
    problems.push(`tune.steps: ${tune.steps} is more than the ${pretrainSteps} pre-training steps the budget allows; allowed <= ${pretrainSteps} (tuning may be at most as long as pre-training)`);
  }
  const tuning = (tune.steps ?? 0) > 0 || (tune.fraction ?? 0) > 0;
  if (!tuning && tune.base_lr != null) {
    problems.push(`tune.base_lr: ${String(tune.base_lr)} is set but unmasked tuning is off (tune.steps ${String(tune.steps)}, tune.fraction ${String(tune.fraction)}); set tune.steps or tune.fraction, or leave tune.base_lr null`);
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
