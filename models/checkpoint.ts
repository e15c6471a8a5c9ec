/**
 * Checkpoints: every model parameter, the tokenizer's vocabulary and the resolved config, in one directory.
 *
 *   <dir>/weights.bin       float32 little-endian, the parameters concatenated in ParamStore order
 *   <dir>/checkpoint.json   CheckpointMeta: format, step, config, tokenizer, and per parameter name / shape / offset
 *
 * Loading rebuilds a FlipModel from the caller's config and refuses a checkpoint whose parameter names or shapes differ
 * from that model's (a different preset, width, vocabulary, decoder on/off, ...), listing every difference, with a
 * ConfigError (retrying cannot help).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from './config.js';
import type { Tokenizer } from './data/tokenizer.js';
import { WordTokenizer } from './data/word-tokenizer.js';
import { ConfigError } from './events.js';
import { buildModel } from './engine/select.js';
import type { FlipModel } from './flip-model.js';

export const CHECKPOINT_FORMAT = 'flip-checkpoint/1';
export const WEIGHTS_FILE = 'weights.bin';
export const META_FILE = 'checkpoint.json';
/** Parameter differences listed in a refusal; the rest are counted. */
const MAX_LISTED = 12;

export interface CheckpointParam {
  name: string;
  shape: number[];
  /** Offset and length in float32 values (not bytes) into weights.bin. */
  offset: number;
  length: number;
}

/** What rebuilds the tokenizer: the word list for 'word' (id = index), nothing for 'clip-bpe' (fixed vocabulary). */
export type CheckpointTokenizer = { name: 'word'; words: string[] } | { name: 'clip-bpe' };

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  /** Optimisation steps done when saved (pre-training + tuning). */
  step: number;
  /** Free-form label: 'pretrain', 'final', ... */
  stage: string;
  /** Extra notes, e.g. that 'final' is the same weights as 'pretrain' when no tuning ran. */
  note?: string;
  config: TrainConfig;
  tokenizer: CheckpointTokenizer;
  vocab_size: number;
  pad_id: number;
  params: CheckpointParam[];
}

export interface SaveOptions {
  step: number;
  stage: string;
  note?: string;
}

function tokenizerRecord(tokenizer: Tokenizer): CheckpointTokenizer {
  if (tokenizer instanceof WordTokenizer) return { name: 'word', words: [...tokenizer.words] };
  if (tokenizer.name === 'clip-bpe') return { name: 'clip-bpe' };
  throw new Error(`checkpoint: cannot save tokenizer "${tokenizer.name}" (known: word, clip-bpe)`);
}

/** Writes weights.bin and checkpoint.json into dir (created if missing). Returns dir. */
export async function saveCheckpoint(dir: string, model: FlipModel, config: TrainConfig, tokenizer: Tokenizer, opts: SaveOptions): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const params: CheckpointParam[] = [];
  let offset = 0;
  for (const p of model.store.params) {
    params.push({ name: p.name, shape: [...p.variable.shape], offset, length: p.variable.size });
    offset += p.variable.size;
  }
  const flat = new Float32Array(offset); // [P] every parameter, in store order
  for (let i = 0; i < params.length; i++) flat.set((await model.store.params[i].variable.data()) as Float32Array, params[i].offset);
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    step: opts.step,
    stage: opts.stage,
    ...(opts.note ? { note: opts.note } : {}),
    config,
    tokenizer: tokenizerRecord(tokenizer),
    vocab_size: tokenizer.vocabSize,
    pad_id: tokenizer.padId,
    params,
  };
  // Written aside, then renamed: a crash leaves the previous checkpoint or none, never a torn one.
  writeFileSync(join(dir, WEIGHTS_FILE + '.tmp'), new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength));
  writeFileSync(join(dir, META_FILE + '.tmp'), JSON.stringify(meta, null, 1) + '\n');
  renameSync(join(dir, WEIGHTS_FILE + '.tmp'), join(dir, WEIGHTS_FILE));
  renameSync(join(dir, META_FILE + '.tmp'), join(dir, META_FILE));
  return dir;
}

/** Reads and checks checkpoint.json (format, parameter table against the size of weights.bin). */
export function readCheckpointMeta(dir: string): CheckpointMeta {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: cannot read ${META_FILE}: ${(e as Error).message}`);
  }
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint ${dir}: format "${String(meta.format)}", expected "${CHECKPOINT_FORMAT}"`);
  if (!Array.isArray(meta.params)) throw new Error(`checkpoint ${dir}: ${META_FILE} has no parameter table`);
  return meta;
}

/** Rebuilds the tokenizer saved with a checkpoint. */
export async function checkpointTokenizer(meta: CheckpointMeta): Promise<Tokenizer> {
  if (meta.tokenizer.name === 'word') return WordTokenizer.fromWords(meta.tokenizer.words);
  if (meta.tokenizer.name === 'clip-bpe') {
    const { ClipBpeTokenizer } = await import('./data/clip-bpe-tokenizer.js');
    return ClipBpeTokenizer.create();
  }
  throw new Error(`checkpoint: unknown tokenizer "${(meta.tokenizer as { name: string }).name}"; known: word, clip-bpe`);
}

/**
 * Differences between the checkpoint's parameter table and the model's: missing, unexpected and reshaped parameters,
 * one line each, with the actual shapes. Empty when they match.
 */
export function compareParams(saved: CheckpointParam[], model: FlipModel): string[] {
  const problems: string[] = [];
  const want = new Map(model.store.params.map((p) => [p.name, p.variable.shape]));
  const have = new Map(saved.map((p) => [p.name, p.shape]));
  for (const [name, shape] of want) {
    const got = have.get(name);
    if (!got) problems.push(`missing parameter ${name} [${shape.join(', ')}]`);
    else if (got.join(',') !== shape.join(',')) problems.push(`${name}: checkpoint [${got.join(', ')}], config wants [${shape.join(', ')}]`);
  }
  for (const [name, shape] of have) if (!want.has(name)) problems.push(`unexpected parameter ${name} [${shape.join(', ')}]`);
  return problems;
}

/** Copies the checkpoint's weights into `model` after checking names and shapes (throws listing every mismatch). */
export function loadWeightsInto(dir: string, meta: CheckpointMeta, model: FlipModel): void {
  const problems = compareParams(meta.params, model);
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_LISTED).join('; ') + (problems.length > MAX_LISTED ? `; ... and ${problems.length - MAX_LISTED} more` : '');
    throw new ConfigError('model', `checkpoint ${dir} does not fit the config (model.*, loss.reconstruction_weight, vocabulary): ${problems.length} differences: ${shown}`);
  }
  const bytes = readFileSync(join(dir, WEIGHTS_FILE));
  const total = meta.params.reduce((a, p) => a + p.length, 0);
  if (bytes.byteLength !== total * 4) throw new Error(`checkpoint ${dir}: ${WEIGHTS_FILE} has ${bytes.byteLength} bytes, the table needs ${total * 4}`);
  const flat = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)); // [P]
  const byName = new Map(meta.params.map((p) => [p.name, p]));
  for (const p of model.store.params) {
    const entry = byName.get(p.name)!;
    const value = tf.tensor(flat.subarray(entry.offset, entry.offset + entry.length), entry.shape, 'float32');
    p.variable.assign(value);
    value.dispose();
  }
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tokenizer: Tokenizer;
  model: FlipModel;
}

/**
 * Builds a FlipModel for `config` with the checkpoint's tokenizer and weights. The config decides the architecture;
 * the checkpoint must match it. Also refuses a different data.image_size or tokenizer, which leave parameter shapes
 * unchanged but change what the weights mean. The caller disposes the model.
 */
export async function loadCheckpoint(dir: string, config: TrainConfig): Promise<LoadedCheckpoint> {
  const meta = readCheckpointMeta(dir);
  if (meta.config.data.image_size !== config.data.image_size) {
    throw new ConfigError('data.image_size', `${config.data.image_size} but checkpoint ${dir} was trained at ${meta.config.data.image_size}`);
  }
  if (meta.tokenizer.name !== config.model.text.tokenizer) {
    throw new ConfigError('model.text.tokenizer', `"${config.model.text.tokenizer}" but checkpoint ${dir} was saved with "${meta.tokenizer.name}"`);
  }
  const tokenizer = await checkpointTokenizer(meta);
  if (tokenizer.vocabSize !== meta.vocab_size) throw new Error(`checkpoint ${dir}: tokenizer rebuilt with ${tokenizer.vocabSize} ids, saved with ${meta.vocab_size}`);
  const model = buildModel(config, tokenizer.vocabSize, tokenizer.padId);
  try {
    loadWeightsInto(dir, meta, model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { meta, tokenizer, model };
}
