/**
 * The training stream of a WebDataset source: shards in a seeded shuffled order, reshuffled on every pass, their
 * samples through a seeded shuffle buffer, decoded only when they leave it. Memory: the buffer's raw (still
 * compressed) samples plus the batch being built; the data set itself is never held.
 *
 * The same seed and shards give the same sequence of examples. A shard that cannot be read to its end stops the
 * stream with a ShardError naming it; samples without a caption or with an undecodable image are skipped and counted.
 */
import type { Example, ExampleStream } from './dataset.js';
import { deriveSeed, makeRng, permutation } from '../random.js';
import { bytesToFloat } from './image-decode.js';
import { readShard, type RawSample } from './shard-reader.js';
import { ShuffleBuffer } from './shuffle-buffer.js';
import { decodeSample, sampleCaption } from './webdataset-sample.js';

/** Raw samples held for shuffling (open_clip starts its buffer at 1,000). */
export const SHUFFLE_BUFFER_SAMPLES = 1000;

export interface ShardStreamOptions {
  seed: number;
  imageSize: number;
  bufferSize?: number;
  /** Skipped samples counted before the stream starts (the eval split's). */
  skippedBefore?: number;
}

export class ShardStream implements ExampleStream {
  private readonly shardRng: () => number;
  private readonly buffer: ShuffleBuffer<RawSample>;
  private order: string[] = [];
  private nextShard = 0;
  private reader: AsyncGenerator<RawSample> | null = null;
  private passes = 0;
  private readThisPass = 0;
  /** Raw samples of the last complete pass; 0 until one is complete. */
  private passLength = 0;
  private skipped: number;
  private skippedInARow = 0;
  private read = 0;

  constructor(readonly shards: readonly string[], private readonly options: ShardStreamOptions) {
    if (shards.length === 0) throw new RangeError('a shard stream needs at least one shard');
    this.shardRng = makeRng(deriveSeed(options.seed, 'webdataset/shards'));
    this.buffer = new ShuffleBuffer(options.bufferSize ?? SHUFFLE_BUFFER_SAMPLES, makeRng(deriveSeed(options.seed, 'webdataset/samples')));
    this.skipped = options.skippedBefore ?? 0;
  }

  get skippedSamples(): number {
    return this.skipped;
  }

  /** Samples read from the shards so far: what was emitted or skipped plus what the buffer holds. */
  get samplesRead(): number {
    return this.read;
  }

  /** Raw samples now held by the shuffle buffer. */
  get buffered(): number {
    return this.buffer.size;
  }

  /** The next raw sample from the shards, pass after pass. */
  private async readRaw(): Promise<RawSample> {
    for (;;) {
      if (this.reader === null) {
        if (this.nextShard === this.order.length) {
          if (this.passes > 0) {
            if (this.readThisPass === 0) throw new Error(`the ${this.shards.length} train shards hold no samples (first: ${this.shards[0]})`);
            this.passLength = this.readThisPass;
          }
          this.order = Array.from(permutation(this.shards.length, this.shardRng), (i) => this.shards[i]);
          this.nextShard = 0;
          this.passes++;
          this.readThisPass = 0;
        }
        this.reader = readShard(this.order[this.nextShard++]);
      }
      const r = await this.reader.next();
      if (!r.done) {
        this.readThisPass++;
        this.read++;
        return r.value;
      }
      this.reader = null;
    }
  }

  /** The next raw sample out of the shuffle buffer, filling it first. */
  private async nextShuffled(): Promise<RawSample> {
    for (;;) {
      const out = this.buffer.add(await this.readRaw());
      if (out !== undefined) return out;
    }
  }

  async next(count: number): Promise<Example[]> {
    const out: Example[] = [];
    while (out.length < count) {
      const raw = await this.nextShuffled();
      const d = await decodeSample(raw, this.options.imageSize);
      if (d.ok) {
        this.skippedInARow = 0;
        out.push({ image: bytesToFloat(d.pixels), caption: d.caption, label: -1 });
        continue;
      }
      this.skipped++;
      this.skippedInARow++;
      // Every sample of a whole pass (and of the buffer) skipped: the stream would never yield a batch.
      if (this.passLength > 0 && this.skippedInARow > this.passLength + this.buffer.capacity) {
        throw new Error(`the train shards have no usable sample: the last ${this.skippedInARow} were all skipped (last: ${d.detail})`);
      }
    }
    return out;
  }

  async captions(limit: number): Promise<string[]> {
    const out: string[] = [];
    for (const shard of this.shards) {
      for await (const raw of readShard(shard)) {
        const caption = sampleCaption(raw);
        if (caption !== null) out.push(caption);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const reader = this.reader;
    this.reader = null;
    await reader?.return(undefined);
  }
}
