/**
 * JSON Schema of a (partial) TrainConfig, with a description and the default of every field.
 * Defaults are read from models/config.ts DEFAULTS so they cannot drift; test/config-schema.test.ts proves that every
 * field of DEFAULTS is described here and nothing else is.
 */
import { DEFAULTS, PRESET_NAMES } from '../../models/config.js';

type Schema = Record<string, unknown>;

const int = (minimum: number, description: string, extra: Schema = {}): Schema => ({ type: 'integer', minimum, description, ...extra });
const nullable = (schema: Schema): Schema => ({ ...schema, type: [schema.type as string, 'null'] });
const ratio = (description: string): Schema => ({ type: 'number', minimum: 0, exclusiveMaximum: 1, description });
const positive = (description: string): Schema => ({ type: 'number', exclusiveMinimum: 0, description });

function object(properties: Record<string, Schema>, description: string): Schema {
  return { type: 'object', additionalProperties: false, description, properties };
}

function transformer(what: string): Record<string, Schema> {
  return {
    width: int(1, `Token width of the ${what}.`),
    depth: int(1, `Number of pre-LayerNorm transformer blocks of the ${what}.`),
    heads: int(1, `Attention heads of the ${what}; must divide width.`),
    mlp_ratio: positive(`MLP hidden width as a multiple of the ${what} width.`),
  };
}

const bare: Schema = object(
  {
    seed: int(0, 'Seeds data order, weight initialisation and masking noise. The `seeds:` list of a spec sets it per job.'),
    backend: {
      enum: ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow'],
      description: "TensorFlow.js backend. 'auto' picks tensorflow (tfjs-node[-gpu] if installed) > webgpu (if a GPU adapter) > wasm.",
    },
    data: object(
      {
        dataset: {
          enum: ['shapes', 'emoji', 'fashion-mnist', 'folder', 'webdataset'],
          description: "'shapes': synthetic captioned shapes; 'emoji': Google emoji images with their names; 'fashion-mnist': Debian's dataset-fashion-mnist; 'folder': your own images (data.path); 'webdataset': tar shards of image-text pairs (data.train, data.val).",
        },
        train_size: int(1, 'Training image-text pairs used (the data-scaling axis).'),
        eval_size: int(1, 'Held-out pairs for zero-shot classification and retrieval.'),
        image_size: int(4, 'Images are resized to image_size x image_size x 3.', { maximum: 1024 }),
        path: nullable({ type: 'string', minLength: 1, description: "Folder or JSONL file for dataset 'folder' (or another location of the Fashion-MNIST files)." }),
        train: nullable({ type: 'string', minLength: 1, description: "Training shards of dataset 'webdataset': a brace pattern such as 'shards/{000000..000099}.tar'; '::' joins several. Read as a stream; data.train_size is then the length of an epoch." }),
        val: nullable({ type: 'string', minLength: 1, description: "Evaluation shards of dataset 'webdataset' (a pattern as for data.train); the first data.eval_size usable samples are used." }),
        classnames: nullable({ type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: "Zero-shot class names of dataset 'webdataset', indexed by the samples' KEY.cls; null: retrieval only." }),
      },
      'What to train and evaluate on.',
    ),
    model: object(
      {
        preset: { enum: PRESET_NAMES, description: 'Named model size; its values apply first, then the model fields written here.' },
        embed_dim: int(1, 'Width of the shared image-text embedding.'),
        image: object(
          { patch_size: int(1, 'Side of a square patch in pixels; must divide data.image_size.'), ...transformer('image encoder (ViT)') },
          'The image encoder (ViT).',
        ),
        text: object(
          {
            ...transformer('text encoder'),
            context_length: int(3, 'Tokens per caption, start and end tokens included.'),
            tokenizer: { enum: ['word', 'clip-bpe'], description: "'word': vocabulary from the training captions; 'clip-bpe': CLIP's 49,408-token BPE." },
            vocab_size: int(8, 'Largest word vocabulary (the most frequent words); ignored by clip-bpe.'),
          },
          'The text encoder.',
        ),
        decoder: object(transformer('MAE decoder'), 'The MAE decoder, built only when loss.reconstruction_weight > 0.'),
      },
      'Model size. Anything omitted comes from the preset.',
    ),
    mask: object(
      {
        image_ratio: ratio('Share of image patches dropped per sample during training, in [0, 1). FLIP uses 0.5 or 0.75.'),
        text_ratio: ratio('Share of text tokens dropped during training, in [0, 1).'),
        text_strategy: {
          enum: ['random', 'prioritized', 'truncate'],
          description: "Which text tokens are dropped: 'random' real tokens, 'prioritized' padding first, 'truncate' keeps the first tokens.",
        },
      },
      'FLIP masking.',
    ),
    loss: object({ reconstruction_weight: { type: 'number', minimum: 0, description: 'Weight of the MAE pixel reconstruction loss; 0 = off.' } }, 'Loss terms.'),
    train: object(
      {
        batch_size: int(1, 'Image-text pairs per step (the contrastive batch).'),
        steps: nullable(int(1, 'Budget in optimizer steps.')),
        samples: nullable(int(1, 'Budget in samples seen.')),
        epochs: nullable(positive('Budget in passes over data.train_size.')),
        time_budget_s: nullable(positive('Budget in wall-clock seconds of training (the paper compares at equal time).')),
        base_lr: positive('Learning rate per 256 pairs: lr = base_lr x batch_size / 256.'),
        lr: nullable(positive('Absolute learning rate; overrides base_lr.')),
        warmup: { type: 'number', minimum: 0, description: 'Linear warm-up: steps when >= 1, a share of the budget when < 1.' },
        weight_decay: { type: 'number', minimum: 0, description: 'AdamW weight decay (not applied to biases, norm scales, position embeddings).' },
        beta1: ratio('AdamW beta1.'),
        beta2: ratio('AdamW beta2.'),
        eps: positive('AdamW epsilon.'),
      },
      'Optimisation and budget. Training stops at the first budget reached; with none set it runs 100 steps.',
    ),
    tune: object(
      {
        steps: nullable(int(0, 'Unmasked tuning steps after pre-training (image mask 0, fresh optimizer).')),
        fraction: nullable({ type: 'number', minimum: 0, maximum: 1, description: 'Unmasked tuning as a share of the pre-training steps.' }),
        base_lr: nullable(positive('Learning rate per 256 pairs for tuning; default train.base_lr / 100.')),
        warmup: { type: 'number', minimum: 0, description: 'Warm-up of the tuning stage: steps when >= 1, a share when < 1.' },
      },
      'Unmasked tuning (Table 1e).',
    ),
    eval: object(
      {
        every: int(0, 'Evaluate every N training steps (0 = only at the end).'),
        templates: {
          oneOf: [
            { const: 'dataset' },
            { type: 'array', minItems: 1, items: { type: 'string', pattern: '\\{\\}' } },
          ],
          description: "'dataset': the dataset's own prompt templates; or a list of templates with {} for the class name.",
        },
        inference: {
          enum: ['unmasked', 'masked', 'ensemble'],
          description: "Image masking at evaluation: 'unmasked', 'masked' (training ratio), 'ensemble' (complementary masked views averaged).",
        },
        batch_size: int(1, 'Batch size of evaluation.'),
      },
      'Evaluation.',
    ),
  },
  'A training configuration. Anything omitted takes its default.',
);

/** Attach DEFAULTS as `default` to every leaf so editors show them. */
function withDefaults(schema: Schema, defaults: unknown): Schema {
  const props = schema.properties as Record<string, Schema> | undefined;
  if (props && typeof defaults === 'object' && defaults !== null && !Array.isArray(defaults)) {
    const out: Record<string, Schema> = {};
    for (const [k, s] of Object.entries(props)) out[k] = withDefaults(s, (defaults as Record<string, unknown>)[k]);
    return { ...schema, properties: out };
  }
  return { ...schema, default: defaults };
}

export const CONFIG_SCHEMA: Schema = withDefaults(bare, DEFAULTS);

/** The sub-schema for a dotted config path ('mask.image_ratio'), or null when the path names no config field. */
export function schemaAtPath(path: string): Schema | null {
  let node: Schema | undefined = CONFIG_SCHEMA;
  for (const part of path.split('.')) {
    const props = node?.properties as Record<string, Schema> | undefined;
    node = props && Object.prototype.hasOwnProperty.call(props, part) ? props[part] : undefined;
    if (!node) return null;
  }
  return node;
}

/** Every dotted path of the config, leaves and groups. */
export function configPaths(schema: Schema = CONFIG_SCHEMA, prefix = ''): string[] {
  const props = schema.properties as Record<string, Schema> | undefined;
  if (!props) return [];
  return Object.entries(props).flatMap(([k, s]) => [prefix + k, ...configPaths(s, `${prefix}${k}.`)]);
}
