/**
 * 'emoji': Google's Noto emoji images (emoji-datasource-google@16, images Apache-2.0) with captions from their names.
 *
 * 1,911 emoji plus 1,875 skin-tone variants = 3,786 PNGs of 64 x 64. An emoji and its skin-tone variants form one
 * group and go to the same split, so eval never sees a recoloured copy of a training image.
 * Zero-shot classes: the 10 Unicode categories ('smileys and emotion', 'flags', ...), chance 1/10; the ~100
 * subcategories are too fine for a few hundred eval images and already appear in the captions.
 * Captions: the emoji's name, short name and subcategory in one of several wordings, chosen per (seed, image).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dataset, Example, Split } from './dataset.js';
import { ConfigError } from '../events.js';
import { deriveSeed, makeRng, permutation } from '../random.js';
import { checkImageSize, checkIndex, checkSplitSizes } from './checks.js';
import { bytesToFloat, decodeImageFile, mapLimit } from './image-decode.js';

interface EmojiRecord {
  name: string | null;
  short_names: string[];
  image: string;
  category: string;
  subcategory: string;
  sort_order: number;
  has_img_google: boolean;
  skin_variations?: Record<string, { image: string; has_img_google: boolean }>;
}

/** One image of the set. */
export interface EmojiItem {
  file: string;
  /** Lowercased name, with the skin tone for a variant ('waving hand with medium skin tone'). */
  name: string;
  shortName: string;
  subcategory: string;
  /** Index into EMOJI_CATEGORIES. */
  category: number;
  /** Index of the base emoji: the unit of the train/eval split. */
  group: number;
}

/** Unicode categories in emoji-datasource's order, and the class names used for zero-shot. */
const CATEGORY_TEXT: Record<string, string> = {
  'Smileys & Emotion': 'smileys and emotion',
  'People & Body': 'people and body',
  Component: 'skin tone components',
  'Animals & Nature': 'animals and nature',
  'Food & Drink': 'food and drink',
  'Travel & Places': 'travel and places',
  Activities: 'activities',
  Objects: 'objects',
  Symbols: 'symbols',
  Flags: 'flags',
};
export const EMOJI_CATEGORIES = Object.keys(CATEGORY_TEXT);
export const EMOJI_CLASS_NAMES = EMOJI_CATEGORIES.map((c) => CATEGORY_TEXT[c]);
export const EMOJI_TEMPLATES = ['an emoji of {}.', 'a {} emoji.', 'an icon from {}.', 'a picture of {}.'];

const TONES: Record<string, string> = {
  '1F3FB': 'light skin tone',
  '1F3FC': 'medium-light skin tone',
  '1F3FD': 'medium skin tone',
  '1F3FE': 'medium-dark skin tone',
  '1F3FF': 'dark skin tone',
};

function toneText(key: string): string {
  const parts = [...new Set(key.split('-'))].map((k) => TONES[k] ?? k.toLowerCase());
  return parts.join(', ');
}

function packageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('emoji-datasource-google/package.json'));
}

/** All images with a Google rendering, in emoji.json order (sort_order), variants after their base. */
export function emojiItems(): { dir: string; items: EmojiItem[] } {
  const dir = packageDir();
  const records = JSON.parse(readFileSync(join(dir, 'emoji.json'), 'utf8')) as EmojiRecord[];
  records.sort((a, b) => a.sort_order - b.sort_order);
  const items: EmojiItem[] = [];
  let group = 0;
  for (const r of records) {
    if (!r.has_img_google) continue;
    const category = EMOJI_CATEGORIES.indexOf(r.category);
    if (category < 0) throw new Error(`emoji.json: unknown category "${r.category}" for ${r.image}`);
    const name = (r.name ?? r.short_names[0] ?? r.image).toLowerCase();
    const base = {
      shortName: (r.short_names[0] ?? name).replace(/[_-]+/g, ' '),
      subcategory: r.subcategory.replace(/-/g, ' '),
      category,
      group,
    };
    items.push({ ...base, file: join(dir, 'img/google/64', r.image), name });
    for (const [key, v] of Object.entries(r.skin_variations ?? {})) {
      if (!v.has_img_google) continue;
      items.push({ ...base, file: join(dir, 'img/google/64', v.image), name: `${name} with ${toneText(key)}` });
    }
    group++;
  }
  return { dir, items };
}

/** One caption of an item, worded by `pick` in [0, 1). */
export function emojiCaption(item: EmojiItem, pick: number): string {
  const { name, shortName, subcategory } = item;
  const article = /^[aeiou]/.test(subcategory) ? 'an' : 'a';
  const templates = [
    `an emoji of ${name}`,
    `${name}, ${article} ${subcategory} emoji`,
    `${name}`,
    `the ${shortName} emoji`,
    `${article} ${subcategory} emoji: ${name}`,
    `an icon showing ${name}`,
    shortName === name ? `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name} emoji` : `${name} (${shortName})`,
  ];
  return templates[Math.floor(pick * templates.length)];
}

/**
 * Eval takes whole groups from the front of a seeded permutation of groups, train the groups after them; the one
 * group that straddles the eval boundary gives its remaining images to neither split. The eval set does not depend
 * on train_size, and a smaller train set is a subset of a bigger one.
 */
export function splitByGroup(items: EmojiItem[], trainSize: number, evalSize: number, seed: number): { train: number[]; eval: number[] } {
  const byGroup: number[][] = [];
  items.forEach((it, i) => (byGroup[it.group] ??= []).push(i));
  const order = permutation(byGroup.length, makeRng(deriveSeed(seed, 'emoji/split')));
  const flat: number[] = [];
  const groupEnd: number[] = []; // flat index after each group
  for (const g of order) {
    flat.push(...byGroup[g]);
    groupEnd.push(flat.length);
  }
  const trainStart = evalSize === 0 ? 0 : (groupEnd.find((e) => e >= evalSize) ?? flat.length);
  const left = flat.length - trainStart;
  if (evalSize > flat.length || trainSize > left) {
    throw new ConfigError(
      'data.train_size',
      `emoji has ${flat.length} images (${byGroup.length} emoji + skin-tone variants); with eval_size ${evalSize}, ` +
        `${Math.max(0, left)} are left for training but train_size is ${trainSize}`,
    );
  }
  // Within a split, images follow a seeded order of all images, so that a group's variants are not neighbours.
  const rank = permutation(items.length, makeRng(deriveSeed(seed, 'emoji/order')));
  const byRank = (a: number, b: number) => rank[a] - rank[b];
  return {
    eval: flat.slice(0, evalSize).sort(byRank),
    train: flat.slice(trainStart, trainStart + trainSize).sort(byRank),
  };
}

function emojiSplit(
  what: string,
  items: EmojiItem[],
  indices: number[],
  images: Uint8Array[],
  captions: string[],
): Split {
  return {
    size: indices.length,
    get(index: number): Example {
      checkIndex(what, index, indices.length);
      const item = items[indices[index]];
      return { image: bytesToFloat(images[index]), caption: captions[index], label: item.category };
    },
  };
}

/** Decoded images by `${file}@${size}`: the package's files never change, so loads in one process share them. */
const decoded = new Map<string, Uint8Array>();

async function decodeCached(file: string, size: number): Promise<Uint8Array> {
  const key = `${file}@${size}`;
  let img = decoded.get(key);
  if (!img) {
    img = await decodeImageFile(file, size);
    decoded.set(key, img);
  }
  return img;
}

/** Decodes the selected images (only those) at load time: all 3,786 take about a second. */
export async function emojiDataset(seed: number, trainSize: number, evalSize: number, imageSize: number): Promise<Dataset> {
  checkImageSize(imageSize);
  checkSplitSizes(trainSize, evalSize);
  const { items } = emojiItems();
  const split = splitByGroup(items, trainSize, evalSize, seed);
  const rng = makeRng(deriveSeed(seed, 'emoji/captions'));
  const picks = items.map(() => rng());
  const make = async (name: 'train' | 'eval', indices: number[]): Promise<Split> => {
    const images = await mapLimit(indices, 16, (i) => decodeCached(items[i].file, imageSize));
    const captions = indices.map((i) => emojiCaption(items[i], picks[i]));
    return emojiSplit(`emoji ${name}`, items, indices, images, captions);
  };
  return {
    name: 'emoji',
    imageSize,
    train: await make('train', split.train),
    eval: await make('eval', split.eval),
    classNames: EMOJI_CLASS_NAMES,
    templates: EMOJI_TEMPLATES,
  };
}
