/**
 * 'webdataset': real shards written by scripts/make-fashion-shards.ts into a temp dir, read back through the data
 * source, the trainer's stream, the real sweep CLI and SQLite.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, createWriteStream, existsSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import tar from 'tar-stream';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import type { Example } from '../models/data/dataset.js';
import { FASHION_CLASS_NAMES, FASHION_MNIST_DEFAULT_PATH, loadPart } from '../models/data/fashion-mnist.js';
import { loadDataset } from '../models/data/load.js';
import { expandShardPattern, resolveShards } from '../models/data/shard-pattern.js';
import { ShardError, readShard, splitKey, type RawSample } from '../models/data/shard-reader.js';
import { ShardStream } from '../models/data/shard-stream.js';
import { ShuffleBuffer } from '../models/data/shuffle-buffer.js';
import { webdatasetDataset, type WebDatasetOptions } from '../models/data/webdataset.js';
import { ConfigError } from '../models/events.js';
import { makeRng } from '../models/random.js';
import { writeFashionShards } from '../scripts/make-fashion-shards.js';
import { runCli, tempDir } from './helpers.js';

const installed = existsSync(`${FASHION_MNIST_DEFAULT_PATH}/train-images-idx3-ubyte.gz`);
const skip = installed ? false : 'Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)';

const PER_SHARD = 30;
let dir = '';
/** 4 train shards of 30 samples (PNG for even, JPEG for odd samples), 2 val shards of 30. */
let trainPattern = '';
let valPattern = '';

/** Samples of a shard, read whole. */
async function samplesOf(shard: string): Promise<RawSample[]> {
  const out: RawSample[] = [];
  for await (const s of readShard(shard)) out.push(s);
  return out;
}

/** Writes samples (extension -> bytes or text) as a tar shard. */
async function writeShard(file: string, samples: { key: string; files: Record<string, Buffer | string> }[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const s of samples) {
    for (const [ext, body] of Object.entries(s.files)) {
      await new Promise<void>((res, rej) => pack.entry({ name: `${s.key}.${ext}` }, body, (e) => (e ? rej(e) : res())));
    }
  }
  pack.finalize();
  await done;
}

function options(o: Partial<WebDatasetOptions> = {}): WebDatasetOptions {
  return { seed: 0, trainSize: 120, evalSize: 20, imageSize: 16, train: trainPattern, val: valPattern, classNames: FASHION_CLASS_NAMES, ...o };
}

/** An example's identity: caption and pixels. */
const id = (x: Example) => `${x.caption}|${Buffer.from(x.image.buffer, x.image.byteOffset, x.image.byteLength).toString('base64')}`;

before(async () => {
  if (!installed) return;
  dir = tempDir('data-webdataset-');
  await writeFashionShards({ out: join(dir, 'fm'), train: 4 * PER_SHARD, val: 2 * PER_SHARD, perShard: PER_SHARD, format: 'mixed' });
  trainPattern = join(dir, 'fm', 'train-{000000..000003}.tar');
  valPattern = join(dir, 'fm', 'val-{000000..000001}.tar');

  // bad.tar: the first 4 samples of a real shard with 4 unusable ones between them.
  const real = (await samplesOf(join(dir, 'fm', 'train-000000.tar'))).slice(0, 4);
  const asFiles = (s: RawSample) => ({ key: s.key, files: Object.fromEntries(s.files) });
  await writeShard(join(dir, 'bad.tar'), [
    asFiles(real[0]),
    { key: 'garbage', files: { jpg: Buffer.from('not a jpeg at all'), txt: 'a broken image' } },
    asFiles(real[1]),
    { key: 'nocaption', files: { png: real[0].files.get('png')!, json: '{}' } },
    { key: 'emptycaption', files: { png: real[0].files.get('png')!, txt: '  \n' } },
    asFiles(real[2]),
    { key: 'noimage', files: { txt: 'a caption without an image', json: '{}' } },
    asFiles(real[3]),
  ]);
  // truncated.tar: a real shard cut in the middle of an entry; notatar.tar: not a tar at all.
  const truncated = join(dir, 'truncated.tar');
  copyFileSync(join(dir, 'fm', 'train-000001.tar'), truncated);
  truncateSync(truncated, Math.floor(statSync(truncated).size / 2) + 100);
  writeFileSync(join(dir, 'notatar.tar'), Buffer.alloc(4096, 0x41));
  // cut-at-block.tar: cut at a 512-byte block boundary, so only the missing end-of-archive marker gives it away.
  const cut = join(dir, 'cut-at-block.tar');
  copyFileSync(join(dir, 'fm', 'train-000001.tar'), cut);
  truncateSync(cut, Math.floor(statSync(cut).size / 2 / 512) * 512);
  // bad-header.tar: whole length and end marker, but the second entry's header is overwritten (checksum mismatch).
  const header = readFileSync(join(dir, 'fm', 'train-000001.tar'));
  const second = 512 + Math.ceil(parseInt(header.subarray(124, 136).toString().trim(), 8) / 512) * 512; // after entry 1's data
  header.fill(0x78, second, second + 100);
  writeFileSync(join(dir, 'bad-header.tar'), header);
  writeFileSync(join(dir, 'shard.tar.gz'), gzipSync(readFileSync(join(dir, 'fm', 'train-000002.tar'))));
  writeFileSync(join(dir, 'bad.tar.gz'), gzipSync(readFileSync(join(dir, 'fm', 'train-000002.tar'))).subarray(0, 2000));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('shard patterns: brace ranges, padding, steps, lists, nesting and ::, as braceexpand and open_clip expand them', () => {
  assert.deepEqual(expandShardPattern('d/{000..003}.tar'), ['d/000.tar', 'd/001.tar', 'd/002.tar', 'd/003.tar']);
  assert.deepEqual(expandShardPattern('s{07..10}'), ['s07', 's08', 's09', 's10']);
  assert.deepEqual(expandShardPattern('{0..10..5}'), ['0', '5', '10']);
  assert.deepEqual(expandShardPattern('{3..1}'), ['3', '2', '1']);
  assert.deepEqual(expandShardPattern('{a..e..2}'), ['a', 'c', 'e']);
  assert.deepEqual(expandShardPattern('{train,extra}-{0..1}.tar'), ['train-0.tar', 'train-1.tar', 'extra-0.tar', 'extra-1.tar']);
  assert.deepEqual(expandShardPattern('py{2.{5..6},3}'), ['py2.5', 'py2.6', 'py3']);
  assert.deepEqual(expandShardPattern('x{,.bak}'), ['x', 'x.bak']);
  assert.deepEqual(expandShardPattern('{x}{a,b}'), ['{x}a', '{x}b'], 'a group that is neither a list nor a range stays as written');
  assert.deepEqual(expandShardPattern('a/{0..1}.tar::b/{00..01}.tar'), ['a/0.tar', 'a/1.tar', 'b/00.tar', 'b/01.tar']);
  assert.throws(() => expandShardPattern('a/{0..3.tar'), /unbalanced '\{'/);
  assert.throws(() => expandShardPattern('a.tar::'), /empty part/);
  assert.throws(() => expandShardPattern('{0..99999999}'), /more than 1000000/);
});

test('shard patterns resolve to existing files; a missing shard or no match is a ConfigError naming key and pattern', { skip }, () => {
  const files = resolveShards('data.train', trainPattern);
  assert.deepEqual(files, [0, 1, 2, 3].map((i) => join(dir, 'fm', `train-00000${i}.tar`)));
  const none = join(dir, 'nowhere', 'x-{000..009}.tar');
  assert.throws(() => resolveShards('data.val', none), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, 'data.val');
    assert.ok(e.message.includes(`"${none}" matches no file`), e.message);
    return true;
  });
  assert.throws(() => resolveShards('data.train', join(dir, 'fm', 'train-{000000..000005}.tar')), (e: unknown) => {
    assert.ok(e instanceof ConfigError && e.key === 'data.train');
    assert.match(e.message, /2 of 6 shards are missing: .*train-000004\.tar, .*train-000005\.tar/);
    return true;
  });
  assert.throws(() => resolveShards('data.train', null), /data.train: null; dataset 'webdataset' needs a shard pattern/);
});

test('shard reader: the WebDataset grouping of files into samples', { skip }, async () => {
  assert.deepEqual(splitKey('dir/000123.jpg'), ['dir/000123', 'jpg']);
  assert.deepEqual(splitKey('a.b/c.seg.PNG'), ['a.b/c', 'seg.png']);
  assert.equal(splitKey('dir/README'), null);
  assert.equal(splitKey('dir/.hidden'), null);
  const samples = await samplesOf(join(dir, 'fm', 'train-000001.tar'));
  assert.equal(samples.length, PER_SHARD);
  assert.equal(samples[0].key, '0000010000');
  assert.deepEqual([...samples[0].files.keys()], ['png', 'txt', 'cls', 'json']);
  assert.deepEqual([...samples[1].files.keys()], ['jpg', 'txt', 'cls', 'json']);
  assert.equal(JSON.parse(samples[3].files.get('json')!.toString()).source_index, PER_SHARD + 3);
  const gz = await samplesOf(join(dir, 'shard.tar.gz'));
  assert.deepEqual(gz.map((s) => s.key), (await samplesOf(join(dir, 'fm', 'train-000002.tar'))).map((s) => s.key), '.tar.gz shards are gunzipped');
});

test('shuffle buffer: never holds more than its capacity; every item comes out once', () => {
  const buf = new ShuffleBuffer<number>(5, makeRng(1));
  const out: number[] = [];
  for (let i = 0; i < 100; i++) {
    const x = buf.add(i);
    assert.ok(buf.size <= 5);
    if (x !== undefined) {
      assert.ok(x <= i && i - x <= 100, 'an item leaves after it arrived');
      out.push(x);
    }
  }
  assert.equal(out.length, 95);
  for (let x = buf.take(); x !== undefined; x = buf.take()) out.push(x);
  assert.deepEqual([...out].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual(out, Array.from({ length: 100 }, (_, i) => i), 'shuffled');
  assert.throws(() => new ShuffleBuffer(0, makeRng(1)), /capacity must be an integer >= 1/);
});

test('stream: bounded reading, the same sequence for a seed, another for another seed, shards reshuffled each pass', { skip }, async () => {
  const shards = resolveShards('data.train', trainPattern);
  // The stream reads only what the batch and the buffer need, never the whole set.
  const s = new ShardStream(shards, { seed: 0, imageSize: 8, bufferSize: 16 });
  assert.equal((await s.next(10)).length, 10);
  assert.equal(s.buffered, 16);
  assert.equal(s.samplesRead, 26, '10 emitted + 16 held of the 120 samples');
  await s.close();

  const sequence = async (seed: number, bufferSize: number, n: number) => {
    const st = new ShardStream(shards, { seed, imageSize: 8, bufferSize });
    const out = (await st.next(n)).map(id);
    await st.close();
    return out;
  };
  const a = await sequence(3, 20, 300);
  assert.deepEqual(await sequence(3, 20, 300), a, 'same seed, same examples in the same order');
  assert.notDeepEqual(await sequence(4, 20, 300), a);
  assert.equal(new Set(a).size, 120, 'over 2.5 passes every sample of the 4 shards appears');

  // With a buffer of 1 the output is the read order: whole shards, each once per pass, in a per-pass order.
  const shardOf = new Map<string, number>();
  for (let i = 0; i < shards.length; i++) {
    const st = new ShardStream([shards[i]], { seed: 0, imageSize: 8, bufferSize: 1 });
    for (const x of await st.next(PER_SHARD)) shardOf.set(id(x), i);
    await st.close();
  }
  const passOrders = new Set<string>();
  for (let seed = 0; seed < 4; seed++) {
    const seq = (await sequence(seed, 1, 3 * 4 * PER_SHARD + 1)).slice(1); // the first output is the sample held first
    const shardSeq = seq.filter((_, i) => i % PER_SHARD === 0).map((x) => shardOf.get(x));
    for (let pass = 0; pass < 3; pass++) {
      const order = shardSeq.slice(pass * 4, pass * 4 + 4);
      assert.deepEqual([...order].sort(), [0, 1, 2, 3], `seed ${seed} pass ${pass}: each shard once (${order})`);
      passOrders.add(order.join());
    }
  }
  assert.ok(passOrders.size > 1, 'shard orders differ between passes and seeds');
});

test('JPEG and PNG samples decode to the source pixels, resized to image_size', { skip }, async () => {
  const test10k = loadPart(FASHION_MNIST_DEFAULT_PATH, 't10k');
  const ds = await webdatasetDataset(options({ imageSize: 28, evalSize: 6 }));
  for (let i = 0; i < 6; i++) {
    const ex = ds.eval.get(i);
    assert.equal(ex.label, test10k.labels[i], 'label from KEY.cls');
    assert.equal(ex.image.length, 28 * 28 * 3);
    let diff = 0;
    for (let p = 0; p < 28 * 28; p++) {
      assert.equal(ex.image[3 * p], ex.image[3 * p + 2], 'grey');
      diff += Math.abs(ex.image[3 * p] - test10k.images.pixels[i * 784 + p] / 255);
    }
    const mean = diff / 784;
    if (i % 2 === 0) assert.ok(mean < 1e-6, `PNG sample ${i} is lossless: mean diff ${mean}`);
    else assert.ok(mean > 0 && mean < 0.03, `JPEG sample ${i} is close: mean diff ${mean}`);
  }
  const small = await webdatasetDataset(options({ imageSize: 12, evalSize: 2 }));
  assert.equal(small.eval.get(1).image.length, 12 * 12 * 3);
});

test('dataset: val split and zero-shot classes; the trainer-facing stream; train.get refuses', { skip }, async () => {
  const ds = await loadDataset(
    deepMerge(DEFAULTS, { seed: 0, data: { dataset: 'webdataset', train: trainPattern, val: valPattern, classnames: FASHION_CLASS_NAMES, train_size: 120, eval_size: 45, image_size: 16 } }) as TrainConfig,
  );
  assert.equal(ds.name, 'webdataset');
  assert.equal(ds.eval.size, 45, 'the first 45 samples of the two val shards');
  assert.deepEqual(ds.classNames, FASHION_CLASS_NAMES);
  assert.ok(ds.templates.length > 0);
  for (let i = 0; i < 45; i++) {
    const ex = ds.eval.get(i);
    assert.ok(ex.label >= 0 && ex.label < 10);
  }
  assert.equal(ds.train.size, 120);
  assert.throws(() => ds.train.get(0), /is a stream/);
  assert.equal((await ds.stream!.captions(50)).length, 50);
  const batch = await ds.stream!.next(8);
  assert.equal(batch.length, 8);
  assert.ok(batch.every((x) => x.image.length === 16 * 16 * 3 && x.caption.length > 0));
  await ds.stream!.close();

  const noClasses = await webdatasetDataset(options({ classNames: null }));
  assert.deepEqual(noClasses.classNames, []);
  assert.equal(noClasses.eval.get(0).label, -1, 'no zero-shot without classnames');
  await assert.rejects(webdatasetDataset(options({ classNames: ['a', 'b'] })), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'data.classnames' && /\.cls is class \d, but data.classnames lists 2 names/.test(e.message);
  });
  await assert.rejects(webdatasetDataset(options({ evalSize: 61 })), /data.eval_size: 61, but the val shards .* hold 60 usable samples/);
});

test('undecodable images and missing captions are skipped and counted', { skip }, async () => {
  const bad = join(dir, 'bad.tar');
  const ds = await webdatasetDataset(options({ val: bad, evalSize: 4, train: bad, bufferSize: 2 }));
  assert.equal(ds.eval.size, 4);
  assert.equal(ds.stream!.skippedSamples, 4, 'garbage image, no caption, empty caption, no image');
  const captions = await ds.stream!.captions(10);
  assert.equal(captions.length, 5, 'the vocabulary pass skips samples without caption or image (it decodes no image)');
  assert.ok(captions.includes('a broken image'));
  await ds.stream!.next(8); // two passes over 4 good and 4 bad samples
  assert.ok(ds.stream!.skippedSamples >= 4 + 6, `skipped ${ds.stream!.skippedSamples}`);
  await ds.stream!.close();

  const onlyBad = join(dir, 'only-bad.tar');
  await writeShard(onlyBad, [{ key: 'x', files: { txt: 'no image' } }, { key: 'y', files: { png: Buffer.from('junk'), txt: 'junk' } }]);
  const s = new ShardStream([onlyBad], { seed: 0, imageSize: 8, bufferSize: 1 });
  await assert.rejects(s.next(1), /no usable sample: the last \d+ were all skipped/);
});

test('a truncated or corrupt shard fails with a message naming the shard', { skip }, async () => {
  const reasons: Record<string, RegExp> = {
    'truncated.tar': /not a whole number of 512-byte tar blocks/,
    'notatar.tar': /no end-of-archive marker/,
    'cut-at-block.tar': /no end-of-archive marker .*cut short/,
    'bad-header.tar': /Invalid tar header/,
    'bad.tar.gz': /unexpected end of file/,
  };
  for (const [name, reason] of Object.entries(reasons)) {
    const shard = join(dir, name);
    await assert.rejects(samplesOf(shard), (e: unknown) => {
      assert.ok(e instanceof ShardError, String(e));
      assert.equal(e.shard, shard);
      assert.ok(e.message.startsWith(`shard ${shard} is truncated or corrupt: `), e.message);
      assert.match(e.message, reason);
      return true;
    });
    // In training: the stream stops with the shard's name.
    const s = new ShardStream([join(dir, 'fm', 'train-000000.tar'), shard], { seed: 0, imageSize: 8, bufferSize: 8 });
    await assert.rejects(s.next(200), (e: unknown) => e instanceof ShardError && e.message.includes(shard));
    await s.close();
  }
  await assert.rejects(samplesOf(join(dir, 'gone.tar')), /^ShardError: shard .*gone\.tar cannot be read: ENOENT/);
  // A val shard is read at load time: a spec error naming data.val and the shard.
  await assert.rejects(webdatasetDataset(options({ val: join(dir, 'truncated.tar'), evalSize: 25 })), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'data.val' && e.message.includes('truncated.tar is truncated or corrupt');
  });
});

test('sweep CLI: a pattern matching no file is a spec error (exit 2) before any training', { skip }, () => {
  const work = tempDir('wds-spec-');
  const missing = join(work, 'none', 'shard-{000000..000009}.tar');
  writeFileSync(join(work, 'spec.yaml'), `name: wds-missing
base:
  data: { dataset: webdataset, train: "${missing}", val: "${valPattern}", train_size: 64, eval_size: 16, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 8, steps: 2 }
`);
  const run = runCli('sweep', [join(work, 'spec.yaml'), '--db', join(work, 'r.db')]);
  assert.equal(run.status, 2, run.stdout + run.stderr);
  const out = run.stdout + run.stderr;
  assert.match(out, /Invalid spec: 1 problem; nothing was run or recorded/);
  assert.ok(out.includes(`data.train: shard pattern "${missing}" matches no file`), out);
  rmSync(work, { recursive: true, force: true });
});

test('sweep end to end on shards: results in SQLite, skipped samples counted, a corrupt shard fails only its job', { skip }, () => {
  const work = tempDir('wds-sweep-');
  const db = join(work, 'results.db');
  const good = `${trainPattern}::${join(dir, 'bad.tar')}`;
  const broken = `${trainPattern}::${join(dir, 'truncated.tar')}`;
  writeFileSync(join(work, 'spec.yaml'), `name: wds-e2e
base:
  data: { dataset: webdataset, val: "${valPattern}", classnames: ${JSON.stringify(FASHION_CLASS_NAMES)}, train_size: 120, eval_size: 40, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 8, steps: 3 }
axes:
  shards:
    good: { data.train: "${good}" }
    broken: { data.train: "${broken}" }
`);
  const run = runCli('sweep', [join(work, 'spec.yaml'), '--db', db]);
  assert.match(run.stdout + run.stderr, /wds-e2e: 1 done, 1 failed/, run.stdout + run.stderr);
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT id, status, labels, error FROM jobs ORDER BY cell_index').all() as { id: number; status: string; labels: string; error: string | null }[];
  assert.deepEqual(rows.map((r) => [JSON.parse(r.labels).shards, r.status]), [['good', 'done'], ['broken', 'failed']]);
  assert.ok(rows[1].error?.includes(`shard ${join(dir, 'truncated.tar')} is truncated or corrupt`), String(rows[1].error));
  const results = Object.fromEntries(
    (d.prepare('SELECT name, value FROM results WHERE job_id = ?').all(rows[0].id) as { name: string; value: number }[]).map((r) => [r.name, r.value]),
  );
  d.close();
  for (const name of ['retrieval_i2t_r1', 'retrieval_t2i_r1', 'zero_shot_top1', 'zero_shot_top5', 'samples_seen', 'skipped_samples']) {
    assert.ok(name in results, `result ${name}: ${JSON.stringify(results)}`);
  }
  assert.equal(results.samples_seen, 24);
  assert.ok(results.skipped_samples > 0, 'the buffer filled through bad.tar, whose 4 bad samples are counted');
  rmSync(work, { recursive: true, force: true });
});
