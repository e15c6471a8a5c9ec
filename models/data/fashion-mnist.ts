/**
 * 'fashion-mnist': Zalando's Fashion-MNIST (MIT), 60k train / 10k test grey 28 x 28 images, from the IDX files of
 * Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz) or data.path.
 *
 * Train examples come from the official training file, eval examples from the official test file (so the splits
 * are disjoint), each a seeded selection. Images are resized to image_size on get() and the grey value is copied
 * into the 3 channels. Zero-shot classes: the 10 official names; captions name the class (sometimes by a synonym).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Dataset, Example, Split } from './dataset.js';
import { ConfigError } from '../events.js';
import { deriveSeed, makeRng, permutation } from '../random.js';
import { checkImageSize, checkIndex, checkSplitSizes } from './checks.js';
import { resizeGreyToRgb } from './image-decode.js';

export const FASHION_MNIST_DEFAULT_PATH = '/usr/share/datasets/fashion-mnist';

export const FASHION_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Nouns used in captions for each class: the first is the class name itself, used by most wordings. */
const CAPTION_NOUNS: string[][] = [
  ['t-shirt', 'top', 'tee'],
  ['trouser', 'pair of trousers', 'pants'],
  ['pullover', 'sweater', 'jumper'],
  ['dress'],
  ['coat', 'jacket'],
  ['sandal'],
  ['shirt'],
  ['sneaker', 'trainer', 'running shoe'],
  ['bag', 'handbag'],
  ['ankle boot', 'boot'],
];

export const FASHION_TEMPLATES = ['a photo of a {}.', 'a black and white photo of a {}.', 'a picture of the {}.', 'a {}.'];

function withArticle(noun: string): string {
  return `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;
}

/** One caption for class `label`, worded by picks in [0, 1); 3 wordings in 4 use the class name. */
export function fashionCaption(label: number, pick: number, pick2: number): string {
  const nouns = CAPTION_NOUNS[label];
  const noun = pick2 < 0.75 ? nouns[0] : nouns[Math.floor(pick2 * 4 * nouns.length) % nouns.length];
  const templates = [
    `a photo of ${withArticle(noun)}`,
    `${withArticle(noun)}`,
    `a black and white photo of ${withArticle(noun)}`,
    `a grey picture of ${withArticle(noun)}`,
    `a fashion item: ${withArticle(noun)}`,
    `a small product photo of ${withArticle(noun)}`,
    `${noun}, greyscale`,
  ];
  return templates[Math.floor(pick * templates.length)];
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

function readIdx(dir: string, base: string): Buffer {
  for (const name of [`${base}.gz`, base]) {
    const file = join(dir, name);
    if (existsSync(file)) {
      const raw = readFileSync(file);
      return name.endsWith('.gz') ? gunzipSync(raw) : raw;
    }
  }
  throw missing(dir, `${base}(.gz)`);
}

function missing(dir: string, what: string): ConfigError {
  return new ConfigError(
    'data.dataset',
    `Fashion-MNIST not found at ${dir} (no ${what}); install it with \`sudo apt-get install dataset-fashion-mnist\` ` +
      'or set data.path to a folder with the IDX files',
  );
}

function parseImages(buf: Buffer, file: string): IdxImages {
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x00000803) {
    throw new ConfigError('data.path', `${file}: not an IDX image file (magic ${buf.length >= 4 ? buf.readUInt32BE(0).toString(16) : 'none'}, expected 803)`);
  }
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  if (buf.length !== 16 + count * rows * cols) {
    throw new ConfigError('data.path', `${file}: expected ${16 + count * rows * cols} bytes for ${count} x ${rows} x ${cols}, got ${buf.length}`);
  }
  return { count, rows, cols, pixels: new Uint8Array(buf.buffer, buf.byteOffset + 16, count * rows * cols) };
}

function parseLabels(buf: Buffer, file: string, count: number): Uint8Array {
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x00000801 || buf.readUInt32BE(4) !== count || buf.length !== 8 + count) {
    throw new ConfigError('data.path', `${file}: not an IDX label file with ${count} labels`);
  }
  const labels = new Uint8Array(buf.buffer, buf.byteOffset + 8, count);
  for (const l of labels) if (l >= FASHION_CLASS_NAMES.length) throw new ConfigError('data.path', `${file}: label ${l} out of range`);
  return labels;
}

/** Parsed files by folder and part (about 55 MB for the full set): later loads in the process skip the gunzip. */
const parsed = new Map<string, { images: IdxImages; labels: Uint8Array }>();

/** The images and labels of the official training ('train') or test ('t10k') file in `dir`. */
export function loadPart(dir: string, prefix: 'train' | 't10k'): { images: IdxImages; labels: Uint8Array } {
  const key = `${dir}/${prefix}`;
  const hit = parsed.get(key);
  if (hit) return hit;
  const images = parseImages(readIdx(dir, `${prefix}-images-idx3-ubyte`), join(dir, `${prefix}-images-idx3-ubyte`));
  const labels = parseLabels(readIdx(dir, `${prefix}-labels-idx1-ubyte`), join(dir, `${prefix}-labels-idx1-ubyte`), images.count);
  parsed.set(key, { images, labels });
  return { images, labels };
}

function fashionSplit(
  what: string,
  part: { images: IdxImages; labels: Uint8Array },
  size: number,
  seed: number,
  imageSize: number,
): Split {
  const { images, labels } = part;
  if (size > images.count) {
    throw new ConfigError(
      what === 'train' ? 'data.train_size' : 'data.eval_size',
      `Fashion-MNIST has ${images.count} ${what} images (official ${what === 'train' ? 'training' : 'test'} file), asked for ${size}`,
    );
  }
  const order = permutation(images.count, makeRng(deriveSeed(seed, `fashion-mnist/${what}`))).slice(0, size);
  const px = images.rows * images.cols;
  return {
    size,
    get(index: number): Example {
      checkIndex(`fashion-mnist ${what}`, index, size);
      const k = order[index];
      const rng = makeRng(deriveSeed(seed, `fashion-mnist/${what}/caption/${k}`));
      const label = labels[k];
      return {
        image: resizeGreyToRgb(images.pixels.subarray(k * px, (k + 1) * px), images.rows, images.cols, imageSize),
        caption: fashionCaption(label, rng(), rng()),
        label,
      };
    },
  };
}

export async function fashionMnistDataset(
  seed: number,
  trainSize: number,
  evalSize: number,
  imageSize: number,
  path: string | null,
): Promise<Dataset> {
  checkImageSize(imageSize);
  checkSplitSizes(trainSize, evalSize);
  const dir = path ?? FASHION_MNIST_DEFAULT_PATH;
  if (!existsSync(dir)) throw missing(dir, 'such folder');
  return {
    name: 'fashion-mnist',
    imageSize,
    train: fashionSplit('train', loadPart(dir, 'train'), trainSize, seed, imageSize),
    eval: fashionSplit('eval', loadPart(dir, 't10k'), evalSize, seed, imageSize),
    classNames: FASHION_CLASS_NAMES,
    templates: FASHION_TEMPLATES,
  };
}
