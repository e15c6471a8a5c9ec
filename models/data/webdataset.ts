/**
 * 'webdataset': image-text pairs in tar shards, the img2dataset / open_clip convention (KEY.jpg or KEY.png with
 * KEY.txt, often KEY.json, sometimes KEY.cls). data.train and data.val are shard patterns (shard-pattern.ts).
 *
 * - Training: a stream (shard-stream.ts), never the whole set in memory. data.train_size is the length of an epoch
 *   (open_clip's --train-num-samples): it sets what train.epochs means and the planned steps, not which samples are
 *   used; to train on less data, name fewer shards.
 * - Evaluation: the first data.eval_size usable samples of the val shards in pattern order, decoded at load time
 *   (the same set for every seed and every train pattern). Retrieval always; zero-shot when data.classnames is given
 *   and the samples carry KEY.cls, an index into it.
 *
 * Bad data: a pattern with a missing shard is a ConfigError (a spec error before any training); an unreadable val
 * shard too, since it is read at load time; an unreadable train shard stops the job (ShardError, naming it); a
 * sample without an image or caption, or with an undecodable image, is skipped and counted (stream.skippedSamples).
 */
import type { Dataset, Example, Split } from './dataset.js';
import { ConfigError } from '../events.js';
import { checkImageSize, checkIndex, checkSplitSizes } from './checks.js';
import { bytesToFloat } from './image-decode.js';
import { resolveShards } from './shard-pattern.js';
import { ShardError, readShard } from './shard-reader.js';
import { ShardStream } from './shard-stream.js';
import { decodeSample, sampleLabel } from './webdataset-sample.js';

export const WEBDATASET_TEMPLATES = ['a photo of a {}.', 'a picture of a {}.', 'an image of a {}.', 'a {}.'];

export interface WebDatasetOptions {
  seed: number;
  trainSize: number;
  evalSize: number;
  imageSize: number;
  /** data.train, data.val: shard patterns. */
  train: string | null;
  val: string | null;
  /** data.classnames: zero-shot class names, indexed by KEY.cls. */
  classNames: string[] | null;
  /** Shuffle buffer capacity in samples (tests use small ones). */
  bufferSize?: number;
}

interface EvalSample {
  pixels: Uint8Array;
  caption: string;
  label: number;
}

/** The first `evalSize` usable samples of the val shards, in order, and how many were skipped on the way. */
async function readEvalSamples(shards: string[], pattern: string, evalSize: number, imageSize: number, classNames: string[]): Promise<{ samples: EvalSample[]; skipped: number }> {
  const samples: EvalSample[] = [];
  let skipped = 0;
  if (evalSize === 0) return { samples, skipped };
  try {
    for (const shard of shards) {
      for await (const raw of readShard(shard)) {
        const d = await decodeSample(raw, imageSize);
        if (!d.ok) {
          skipped++;
          continue;
        }
        samples.push({ pixels: d.pixels, caption: d.caption, label: sampleLabel(raw, classNames) });
        if (samples.length === evalSize) return { samples, skipped };
      }
    }
  } catch (e) {
    if (e instanceof ShardError) throw new ConfigError('data.val', e.message);
    throw e;
  }
  if (samples.length < evalSize) {
    throw new ConfigError(
      'data.eval_size',
      `${evalSize}, but the val shards "${pattern}" hold ${samples.length} usable samples (${skipped} skipped); allowed <= ${samples.length}`,
    );
  }
  return { samples, skipped };
}

function checkClassNames(classNames: unknown): string[] {
  if (classNames === null || classNames === undefined) return [];
  if (!Array.isArray(classNames) || classNames.length === 0 || classNames.some((c) => typeof c !== 'string' || c.trim() === '')) {
    throw new ConfigError('data.classnames', `${JSON.stringify(classNames)}; expected null or a non-empty list of class names (KEY.cls indexes it)`);
  }
  return classNames as string[];
}

export async function webdatasetDataset(o: WebDatasetOptions): Promise<Dataset> {
  checkImageSize(o.imageSize);
  checkSplitSizes(o.trainSize, o.evalSize);
  const classNames = checkClassNames(o.classNames);
  const trainShards = resolveShards('data.train', o.train);
  const valShards = resolveShards('data.val', o.val);
  const { samples, skipped } = await readEvalSamples(valShards, o.val!, o.evalSize, o.imageSize, classNames);
  const evalSplit: Split = {
    size: samples.length,
    get(index: number): Example {
      checkIndex('webdataset eval', index, samples.length);
      const s = samples[index];
      return { image: bytesToFloat(s.pixels), caption: s.caption, label: s.label };
    },
  };
  const trainSplit: Split = {
    size: o.trainSize,
    get(): Example {
      throw new Error("the 'webdataset' training split is a stream: read it with dataset.stream.next(), not train.get()");
    },
  };
  return {
    name: 'webdataset',
    imageSize: o.imageSize,
    train: trainSplit,
    eval: evalSplit,
    classNames,
    templates: classNames.length > 0 ? WEBDATASET_TEMPLATES : [],
    stream: new ShardStream(trainShards, { seed: o.seed, imageSize: o.imageSize, bufferSize: o.bufferSize, skippedBefore: skipped }),
  };
}
