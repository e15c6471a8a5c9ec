/**
 * The one declaration of every TrainConfig field: its type, default, bounds or allowed values, and what it does.
 * Everything else is derived from it: the TrainConfig type and DEFAULTS (models/config.ts), the trainer's per-field
 * checks (models/check-config.ts), the JSON Schema (framework/spec/config-schema.ts) and the config reference
 * (framework/spec/config-docs.ts). test/config-bounds.test.ts proves the schema's bounds are the trainer's.
 *
 * The model's shape defaults are those of the default preset ('small'); test/config-schema.test.ts checks they agree.
 */
import { group, integer, nullableInteger, nullableNames, nullableNumber, nullableText, number, oneOf, templates } from './config-field-kinds.js';
import { PRESET_NAMES } from './presets.js';

/** The sin-cos position table of a 2-D patch grid gives a quarter of the width to each of sin/cos of row/column. */
const SIN_COS_WIDTH = '2-D sin-cos positions split the width in 4';

function transformer(what: string, d: { width: number; depth: number; heads: number; mlp_ratio: number }, gridPositions: boolean) {
  return {
    width: gridPositions
      ? integer({ min: 4, multipleOf: 4 }, d.width, `Token width of the ${what}.`, SIN_COS_WIDTH)
      : integer({ min: 1 }, d.width, `Token width of the ${what}.`),
    depth: integer({ min: 1 }, d.depth, `Number of pre-LayerNorm transformer blocks of the ${what}.`),
    heads: integer({ min: 1 }, d.heads, `Attention heads of the ${what}; must divide width.`),
    mlp_ratio: number({ exclusiveMin: 0 }, d.mlp_ratio, `MLP hidden width as a multiple of the ${what} width.`),
  };
}

/**
 * Fields that change how a run is carried out but never its results (resume states are exact): left out of a job's
 * identity (framework/grid/config-hash.ts), so changing them neither reruns done jobs nor splits a cell in two.
 */
export const RESULT_NEUTRAL_PATHS = ['train.checkpoint_every', 'train.checkpoint_every_s'] as const;

export const CONFIG_FIELDS = group('A training configuration. Anything omitted takes its default.', {
  seed: integer({ min: 0 }, 0, 'Seeds data order, weight initialisation and masking noise. The `seeds:` list of a spec sets it per job.'),
  backend: oneOf(
    ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow'],
    'wasm',
    "TensorFlow.js backend. 'auto' picks tensorflow (tfjs-node[-gpu] if installed) > webgpu (if a GPU adapter) > wasm.",
  ),
  data: group('What to train and evaluate on.', {
    dataset: oneOf(
      ['shapes', 'glyphs', 'glyphs-faint', 'glyphs-24', 'emoji', 'fashion-mnist', 'folder', 'webdataset'],
      'shapes',
      "'shapes': synthetic captioned shapes, class '<colour> <shape>' (35); 'glyphs': synthetic captioned figures, class the figure alone (12), colour independent of it; 'glyphs-faint': the same with one figure in five drawn too faint to see (an accuracy ceiling); 'glyphs-24': the same with 24 figures (a harder task); 'emoji': Google emoji images with their names; 'fashion-mnist': Debian's dataset-fashion-mnist; 'folder': your own images (data.path); 'webdataset': tar shards as img2dataset writes them (data.train, data.val).",
    ),
    train_size: integer({ min: 1 }, 2048, 'Training image-text pairs used (the data-scaling axis).'),
    eval_size: integer({ min: 1 }, 256, 'Held-out pairs for zero-shot classification and retrieval.'),
    // [4, 1024]: what the data loaders were written for (models/data/checks.ts applies this bound to every loader);
    // the checker's former >= 1 let through sizes that loading refused only after the job had started.
    image_size: integer({ min: 4, max: 1024 }, 32, 'Images are resized to image_size x image_size x 3.'),
    path: nullableText(null, "Folder or JSONL file for dataset 'folder' (or another location of the Fashion-MNIST files)."),
    train: nullableText(null, "Training shards of dataset 'webdataset': a brace pattern such as \"shards/{000000..000099}.tar\" ('::' joins patterns)."),
    val: nullableText(null, "Evaluation shards of dataset 'webdataset' (a pattern as data.train)."),
    classnames: nullableNames(null, "Class names for zero-shot evaluation of dataset 'webdataset'; a sample's KEY.cls is an index into them."),
  }),
  model: group('Model size. Anything omitted comes from the preset.', {
    preset: oneOf(PRESET_NAMES, 'small', 'Named model size; its values apply first, then the model fields written here.'),
    embed_dim: integer({ min: 1 }, 128, 'Width of the shared image-text embedding.'),
    image: group('The image encoder (ViT).', {
      patch_size: integer({ min: 1 }, 4, 'Side of a square patch in pixels; must divide data.image_size.'),
      ...transformer('image encoder (ViT)', { width: 128, depth: 4, heads: 4, mlp_ratio: 4 }, true),
    }),
    text: group('The text encoder.', {
      ...transformer('text encoder', { width: 128, depth: 4, heads: 4, mlp_ratio: 4 }, false),
      // The tokenizers would pack 2 (start + end), but then no word of any caption reaches the encoder and every
      // caption encodes the same; the schema's 3 is the smallest length that trains on text.
      context_length: integer(
        { min: 3 },
        16,
        'Tokens per caption, start and end tokens included; longer captions are cut.',
        'start and end tokens plus at least one word',
      ),
      tokenizer: oneOf(['word', 'clip-bpe'], 'word', "'word': vocabulary from the training captions; 'clip-bpe': CLIP's 49,408-token BPE."),
      // The word tokenizer refuses fewer than 5 (models/data/word-tokenizer.ts); the schema's former 8 had no reason,
      // the checker's former 4 let through a size the tokenizer refused after the job had started.
      vocab_size: integer(
        { min: 5 },
        1000,
        'Largest word vocabulary (the most frequent words); ignored by clip-bpe.',
        '4 special tokens plus at least one word',
      ),
    }),
    decoder: group(
      'The MAE decoder, built only when loss.reconstruction_weight > 0.',
      transformer('MAE decoder', { width: 96, depth: 2, heads: 3, mlp_ratio: 4 }, true),
    ),
  }),
  mask: group('FLIP masking.', {
    image_ratio: number({ min: 0, exclusiveMax: 1 }, 0, 'Share of image patches dropped per sample during training. FLIP uses 0.5 or 0.75.'),
    text_ratio: number({ min: 0, exclusiveMax: 1 }, 0, 'Share of text tokens dropped during training.'),
    text_strategy: oneOf(
      ['random', 'prioritized', 'truncate'],
      'random',
      "Which text tokens are dropped: 'random' real tokens, 'prioritized' padding first, 'truncate' keeps the first tokens.",
    ),
  }),
  loss: group('Loss terms.', {
    reconstruction_weight: number({ min: 0 }, 0, 'Weight of the MAE pixel reconstruction loss; 0 = off.'),
  }),
  train: group('Optimisation and budget. Training stops at the first budget reached; with none set it runs 100 steps.', {
    // The schema's former >= 1 allowed a batch of one pair, whose contrastive loss has no negative and is always 0.
    batch_size: integer({ min: 2 }, 64, 'Image-text pairs per step (the contrastive batch).', 'the contrastive loss needs at least one negative pair'),
    steps: nullableInteger({ min: 1 }, null, 'Budget in optimizer steps.'),
    samples: nullableInteger({ min: 1 }, null, 'Budget in samples seen.'),
    epochs: nullableNumber({ exclusiveMin: 0 }, null, 'Budget in passes over data.train_size.'),
    time_budget_s: nullableNumber({ exclusiveMin: 0 }, null, 'Budget in wall-clock seconds of training (the paper compares at equal time).'),
    base_lr: number({ exclusiveMin: 0 }, 1e-3, 'Learning rate per 256 pairs: lr = base_lr x batch_size / 256.'),
    lr: nullableNumber({ exclusiveMin: 0 }, null, 'Absolute learning rate; overrides base_lr.'),
    warmup: number({ min: 0 }, 0.1, 'Linear warm-up: steps when >= 1, a share of the budget when < 1.'),
    weight_decay: number({ min: 0 }, 0.2, 'AdamW weight decay (not applied to biases, norm scales, position embeddings).'),
    beta1: number({ min: 0, exclusiveMax: 1 }, 0.9, 'AdamW beta1.'),
    beta2: number({ min: 0, exclusiveMax: 1 }, 0.95, 'AdamW beta2.'),
    eps: number({ exclusiveMin: 0 }, 1e-8, 'AdamW epsilon.'),
    checkpoint_every: nullableInteger(
      { min: 1 },
      null,
      'Save a resume state every N pre-training steps (besides checkpoint_every_s); an interrupted, killed or failed job goes on from its last one.',
    ),
    checkpoint_every_s: nullableNumber(
      { exclusiveMin: 0 },
      60,
      'Save a resume state every N seconds of training, so jobs shorter than that save none; null: only by checkpoint_every.',
    ),
  }),
  tune: group('Unmasked tuning (Table 1e).', {
    steps: nullableInteger({ min: 0 }, null, 'Unmasked tuning steps after pre-training (image mask 0, fresh optimizer); at most the pre-training steps.'),
    fraction: nullableNumber(
      { min: 0, max: 1 },
      null,
      'Unmasked tuning as a share of the pre-training steps.',
      'tuning may be at most as long as pre-training',
    ),
    base_lr: nullableNumber({ exclusiveMin: 0 }, null, 'Learning rate per 256 pairs for tuning; default train.base_lr / 100.'),
    warmup: number({ min: 0 }, 0.1, 'Warm-up of the tuning stage: steps when >= 1, a share when < 1.'),
  }),
  eval: group('Evaluation.', {
    every: integer({ min: 0 }, 0, 'Evaluate every N training steps (0 = only at the end).'),
    templates: templates('dataset', "'dataset': the dataset's own prompt templates; or a list of templates with {} for the class name."),
    inference: oneOf(
      ['unmasked', 'masked', 'ensemble'],
      'unmasked',
      "Image masking at evaluation: 'unmasked', 'masked' (training ratio), 'ensemble' (complementary masked views averaged).",
    ),
    batch_size: integer({ min: 1 }, 128, 'Batch size of evaluation.'),
  }),
});
