/**
 * Writes Fashion-MNIST as WebDataset shards, the layout img2dataset writes: OUT/train-000000.tar ... and
 * OUT/val-000000.tar ..., each sample KEY.jpg or KEY.png (the image), KEY.txt (a caption naming the class),
 * KEY.cls (the class index) and KEY.json ({"key", "label", "source_index"}); class names in OUT/classnames.json.
 * Train samples come from the official training file, val samples from the test file. The output is the same bytes
 * for the same arguments.
 *
 *   node --import tsx scripts/make-fashion-shards.ts --out data/fashion-shards [--train 6000] [--val 1000]
 *        [--per-shard 1000] [--format jpg|png|mixed] [--size 28] [--source /usr/share/datasets/fashion-mnist]
 *
 * Then point a spec at them: data: { dataset: webdataset, train: "data/fashion-shards/train-{000000..000005}.tar",
 * val: "data/fashion-shards/val-000000.tar", classnames: [...classnames.json] }.
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createCanvas } from '@napi-rs/canvas';
import tar from 'tar-stream';
import { FASHION_CLASS_NAMES, FASHION_MNIST_DEFAULT_PATH, fashionCaption, loadPart } from '../models/data/fashion-mnist.js';
import { deriveSeed, makeRng } from '../models/random.js';

export type ShardImageFormat = 'jpg' | 'png' | 'mixed';

export interface FashionShardOptions {
  out: string;
  train: number;
  val: number;
  perShard: number;
  /** 'mixed': even samples PNG, odd samples JPEG. */
  format: ShardImageFormat;
  /** Side of the written images in pixels (the source is 28). */
  size: number;
  source: string;
}

export const FASHION_SHARD_DEFAULTS: Omit<FashionShardOptions, 'out'> = {
  train: 6000,
  val: 1000,
  perShard: 1000,
  format: 'jpg',
  size: 28,
  source: FASHION_MNIST_DEFAULT_PATH,
};

/** A grey rows x cols image, scaled to size x size, encoded as PNG or JPEG. */
function encodeGrey(pixels: Uint8Array, rows: number, cols: number, size: number, ext: 'jpg' | 'png'): Buffer {
  const src = createCanvas(cols, rows);
  const sctx = src.getContext('2d');
  const img = sctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = pixels[i];
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  let canvas = src;
  if (size !== rows || size !== cols) {
    canvas = createCanvas(size, size);
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(src, 0, 0, size, size);
  }
  return ext === 'png' ? canvas.toBuffer('image/png') : canvas.toBuffer('image/jpeg', 90);
}

/** Writes one split's shards; returns their paths. */
async function writeSplit(o: FashionShardOptions, split: 'train' | 'val', count: number): Promise<string[]> {
  const part = loadPart(o.source, split === 'train' ? 'train' : 't10k');
  const { images, labels } = part;
  if (count > images.count) throw new Error(`--${split} ${count}: the Fashion-MNIST ${split === 'train' ? 'training' : 'test'} file has ${images.count} images`);
  const px = images.rows * images.cols;
  const files: string[] = [];
  for (let shard = 0; shard * o.perShard < count; shard++) {
    const file = join(o.out, `${split}-${String(shard).padStart(6, '0')}.tar`);
    const pack = tar.pack();
    const done = pipeline(pack, createWriteStream(file));
    const mtime = new Date(0);
    const add = (name: string, body: Buffer | string) =>
      new Promise<void>((res, rej) => pack.entry({ name, mtime, mode: 0o644 }, body, (err) => (err ? rej(err) : res())));
    for (let i = shard * o.perShard; i < Math.min(count, (shard + 1) * o.perShard); i++) {
      const key = `${String(shard).padStart(6, '0')}${String(i - shard * o.perShard).padStart(4, '0')}`;
      const ext = o.format === 'mixed' ? (i % 2 === 0 ? 'png' : 'jpg') : o.format;
      const label = labels[i];
      const rng = makeRng(deriveSeed(0, `fashion-shards/${split}/${i}`));
      await add(`${key}.${ext}`, encodeGrey(images.pixels.subarray(i * px, (i + 1) * px), images.rows, images.cols, o.size, ext));
      await add(`${key}.txt`, fashionCaption(label, rng(), rng()));
      await add(`${key}.cls`, String(label));
      await add(`${key}.json`, JSON.stringify({ key, label: FASHION_CLASS_NAMES[label], source_index: i }));
    }
    pack.finalize();
    await done;
    files.push(file);
  }
  return files;
}

export async function writeFashionShards(options: Partial<FashionShardOptions> & { out: string }): Promise<{ train: string[]; val: string[] }> {
  const o: FashionShardOptions = { ...FASHION_SHARD_DEFAULTS, ...options };
  for (const key of ['train', 'val', 'perShard', 'size'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < (key === 'val' ? 0 : 1)) throw new Error(`--${key}: ${o[key]} must be a positive integer`);
  }
  if (!['jpg', 'png', 'mixed'].includes(o.format)) throw new Error(`--format: "${o.format}" is not one of jpg, png, mixed`);
  mkdirSync(o.out, { recursive: true });
  const train = await writeSplit(o, 'train', o.train);
  const val = o.val > 0 ? await writeSplit(o, 'val', o.val) : [];
  writeFileSync(join(o.out, 'classnames.json'), JSON.stringify(FASHION_CLASS_NAMES) + '\n');
  return { train, val };
}

/** '{000000..000005}' for shards 0..5, the pattern a spec names them with. */
export function shardRange(count: number): string {
  return count === 1 ? '000000' : `{000000..${String(count - 1).padStart(6, '0')}}`;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      train: { type: 'string' },
      val: { type: 'string' },
      'per-shard': { type: 'string' },
      format: { type: 'string' },
      size: { type: 'string' },
      source: { type: 'string' },
    },
  });
  if (!values.out) {
    console.error('usage: node --import tsx scripts/make-fashion-shards.ts --out DIR [--train N] [--val N] [--per-shard N] [--format jpg|png|mixed] [--size PX] [--source DIR]');
    process.exit(2);
  }
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  try {
    const out = resolve(values.out);
    const { train, val } = await writeFashionShards({
      out,
      train: num(values.train, FASHION_SHARD_DEFAULTS.train),
      val: num(values.val, FASHION_SHARD_DEFAULTS.val),
      perShard: num(values['per-shard'], FASHION_SHARD_DEFAULTS.perShard),
      format: (values.format ?? FASHION_SHARD_DEFAULTS.format) as ShardImageFormat,
      size: num(values.size, FASHION_SHARD_DEFAULTS.size),
      source: values.source ?? FASHION_SHARD_DEFAULTS.source,
    });
    console.log(`wrote ${train.length} train and ${val.length} val shards to ${out}`);
    console.log(`  train: ${join(values.out, `train-${shardRange(train.length)}.tar`)}`);
    if (val.length > 0) console.log(`  val:   ${join(values.out, `val-${shardRange(val.length)}.tar`)}`);
    console.log(`  classnames: ${JSON.stringify(FASHION_CLASS_NAMES)}`);
  } catch (e) {
    console.error(`make-fashion-shards: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
