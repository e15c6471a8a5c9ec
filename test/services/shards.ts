/**
 * Small Fashion-MNIST WebDataset shards for the executor tests, written by the script users run
 * (scripts/make-fashion-shards.ts), plus one shard with unusable samples (counted as skipped_samples) and one cut in
 * the middle (fails the job that reads it). All paths absolute, so every executor reads the same files.
 */
import assert from 'node:assert/strict';
import { copyFileSync, createWriteStream, existsSync, statSync, truncateSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { FASHION_CLASS_NAMES, FASHION_MNIST_DEFAULT_PATH } from '../../models/data/fashion-mnist.js';
import { writeFashionShards } from '../../scripts/make-fashion-shards.js';
import { assertSameAsLocal, recordedJobs } from './results.js';

export const fashionInstalled = existsSync(join(FASHION_MNIST_DEFAULT_PATH, 'train-images-idx3-ubyte.gz'));

export interface TestShards {
  /** Two Fashion-MNIST shards and bad.tar (3 unusable samples, counted as skipped). */
  train: string;
  val: string;
  /** A real train shard cut in the middle of an entry. */
  truncated: string;
}

/** Writes the shards under `dir` (absolute). Images are 16 x 16, the size the tests train at. */
export async function writeTestShards(dir: string): Promise<TestShards> {
  const out = join(dir, 'fm');
  await writeFashionShards({ out, train: 64, val: 32, perShard: 32, format: 'mixed', size: 16 });
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(join(dir, 'bad.tar')));
  const entry = (name: string, body: string) => new Promise<void>((res, rej) => pack.entry({ name, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())));
  await entry('garbage.jpg', 'not a jpeg at all');
  await entry('garbage.txt', 'a broken image');
  await entry('nocaption.json', '{}');
  await entry('noimage.txt', 'a caption without an image');
  pack.finalize();
  await done;
  const truncated = join(dir, 'truncated.tar');
  copyFileSync(join(out, 'train-000001.tar'), truncated);
  truncateSync(truncated, Math.floor(statSync(truncated).size / 2) + 100);
  return { train: `${join(out, 'train-{000000..000001}.tar')}::${join(dir, 'bad.tar')}`, val: join(out, 'val-000000.tar'), truncated };
}

/** A shard pattern with each '::' part relative to `from` (the folder a sweep runs in). */
function relativePattern(pattern: string, from: string): string {
  return pattern.split('::').map((p) => relative(from, p)).join('::');
}

/**
 * A two-cell sweep on the shards: `good` trains on the train shards, `broken` on the truncated one (it must fail,
 * naming the shard). Tiny model, a few steps. With `relativeTo`, the good cell's train pattern is written relative to
 * that folder.
 */
export function shardSpec(name: string, shards: TestShards, relativeTo?: string): string {
  const train = relativeTo === undefined ? shards.train : relativePattern(shards.train, relativeTo);
  return `name: ${name}
base:
  data: { dataset: webdataset, val: "${shards.val}", classnames: ${JSON.stringify(FASHION_CLASS_NAMES)}, train_size: 64, eval_size: 32, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 4 }
axes:
  shards:
    good: { data.train: "${train}" }
    broken: { data.train: "${shards.truncated}" }
`;
}

/**
 * The executor's sweep of shardSpec recorded what the local one did: the good job done with the same results (bit for
 * bit, skipped_samples included, bad.tar's samples counted), the broken one failed with the same error naming the
 * truncated shard.
 */
export function assertShardSweep(actualDb: string, localDb: string, truncated: string): void {
  const local = [...recordedJobs(localDb).values()];
  const failed = local.filter((j) => j.status === 'failed');
  assert.equal(failed.length, 1, `one local job failed: ${JSON.stringify(local.map((j) => [j.status, j.error]))}`);
  assert.ok(failed[0].error?.includes(`shard ${truncated} is truncated or corrupt`), String(failed[0].error));
  const jobs = assertSameAsLocal(actualDb, localDb, { failed: [failed[0].hash] });
  const good = [...jobs.values()].find((j) => j.status === 'done')!;
  assert.ok(good.results.skipped_samples > 0, `skipped_samples: ${JSON.stringify(good.results)}`);
  for (const name of ['retrieval_i2t_r1', 'zero_shot_top1', 'samples_seen']) assert.ok(name in good.results, `result ${name}`);
}
