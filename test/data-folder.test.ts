import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { DEFAULTS, deepMerge, type TrainConfig } from '../models/config.js';
import { loadDataset } from '../models/data/load.js';
import { captionFromFileName } from '../models/data/folder.js';
import { ConfigError } from '../models/events.js';

let root = '';

/** A w x h image filled with one colour; alpha 0 leaves it transparent. */
function image(w: number, h: number, colour: string, type: 'image/png' | 'image/jpeg' = 'image/png'): Buffer {
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = colour;
  ctx.fillRect(0, 0, w, h);
  return type === 'image/png' ? canvas.toBuffer('image/png') : canvas.toBuffer('image/jpeg');
}

function config(data: Partial<TrainConfig['data']>, seed = 0): TrainConfig {
  return deepMerge(DEFAULTS, { seed, data: { dataset: 'folder', image_size: 8, ...data } });
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'data-folder-'));
  // plain: file names and a sidecar as captions, no labels
  const plain = join(root, 'plain');
  mkdirSync(join(plain, 'sub'), { recursive: true });
  writeFileSync(join(plain, 'red_square-01.png'), image(20, 10, '#ff0000'));
  writeFileSync(join(plain, 'blue-square.jpg'), image(12, 12, '#0000ff', 'image/jpeg'));
  writeFileSync(join(plain, 'sub', 'clear.png'), image(8, 8, 'rgba(0,0,0,0)'));
  writeFileSync(join(plain, 'sub', 'clear.txt'), '  a transparent square \n');
  writeFileSync(join(plain, 'notes.md'), 'not an image');
  // labelled: ImageFolder layout
  for (const [cls, red] of [['cat', 50], ['dog', 200]] as const) {
    mkdirSync(join(root, 'labelled', cls), { recursive: true });
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(root, 'labelled', cls, `${cls}${i}.png`), image(16, 16, `rgb(${red}, ${i * 50}, 0)`));
    }
  }
  // jsonl with labels
  const jl = join(root, 'jsonl');
  mkdirSync(join(jl, 'img'), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const label = i % 3 === 0 ? 'green thing' : 'red thing';
    writeFileSync(join(jl, 'img', `${i}.png`), image(10, 10, label === 'red thing' ? '#ff0000' : '#00ff00'));
    lines.push(JSON.stringify({ image: `img/${i}.png`, caption: `picture ${i} of a ${label}`, label }));
  }
  writeFileSync(join(jl, 'data.jsonl'), lines.join('\n') + '\n\n');
  mkdirSync(join(root, 'with-captions'));
  writeFileSync(join(root, 'with-captions', 'a.png'), image(4, 4, '#ffffff'));
  writeFileSync(join(root, 'with-captions', 'captions.jsonl'), '{"image": "a.png", "caption": "white"}\n');
  // broken inputs
  mkdirSync(join(root, 'corrupt'));
  writeFileSync(join(root, 'corrupt', 'ok.png'), image(4, 4, '#ffffff'));
  writeFileSync(join(root, 'corrupt', 'bad.png'), Buffer.from('this is not a png file at all'));
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'bad.jsonl'), '{"image": "x.png", "caption": "ok"}\n{"image": "y.png", caption: oops}\n');
  writeFileSync(join(root, 'nocaption.jsonl'), '{"image": "x.png"}\n');
});

after(() => rmSync(root, { recursive: true, force: true }));

test('folder: file names, sidecars, no labels; JPEG, non-square and transparent images', async () => {
  const ds = await loadDataset(config({ path: join(root, 'plain'), train_size: 2, eval_size: 1 }));
  assert.deepEqual(ds.classNames, []);
  const all = [ds.train.get(0), ds.train.get(1), ds.eval.get(0)];
  const byCaption = new Map(all.map((e) => [e.caption, e]));
  assert.deepEqual([...byCaption.keys()].sort(), ['a transparent square', 'blue square', 'red square']);
  for (const e of all) {
    assert.equal(e.label, -1);
    assert.equal(e.image.length, 8 * 8 * 3);
  }
  const red = byCaption.get('red square')!.image;
  assert.ok(red[0] > 0.95 && red[1] < 0.05 && red[2] < 0.05, `red: ${red.slice(0, 3)}`);
  const blue = byCaption.get('blue square')!.image;
  assert.ok(blue[2] > 0.9 && blue[0] < 0.1, `blue (JPEG): ${blue.slice(0, 3)}`);
  assert.ok(byCaption.get('a transparent square')!.image.every((v) => v === 1), 'transparent -> white');
  assert.equal(captionFromFileName('/x/red_circle-2.png'), 'red circle');
});

test('folder: subfolders are labels; deterministic and disjoint splits', async () => {
  const path = join(root, 'labelled');
  const a = await loadDataset(config({ path, train_size: 6, eval_size: 4 }, 5));
  const b = await loadDataset(config({ path, train_size: 6, eval_size: 4 }, 5));
  assert.deepEqual(a.classNames, ['cat', 'dog']);
  assert.ok(a.templates.length > 0);
  const key = (s: typeof a.train, i: number) => `${s.get(i).caption} ${s.get(i).image.slice(0, 3).join()}`;
  const trainKeys = Array.from({ length: 6 }, (_, i) => key(a.train, i));
  const evalKeys = Array.from({ length: 4 }, (_, i) => key(a.eval, i));
  assert.equal(new Set([...trainKeys, ...evalKeys]).size, 10, 'no image in both splits');
  assert.deepEqual(trainKeys, Array.from({ length: 6 }, (_, i) => key(b.train, i)));
  for (let i = 0; i < 6; i++) {
    const ex = a.train.get(i);
    assert.ok(ex.caption.startsWith(a.classNames[ex.label]), `${ex.caption} / ${a.classNames[ex.label]}`);
  }
  const orders = new Set<string>();
  for (let seed = 0; seed < 4; seed++) {
    const d = await loadDataset(config({ path, train_size: 6, eval_size: 4 }, seed));
    orders.add(Array.from({ length: 6 }, (_, i) => key(d.train, i)).join());
  }
  assert.ok(orders.size > 1, 'seeds change the order');
  await assert.rejects(loadDataset(config({ path, train_size: 8, eval_size: 4 })), (e: unknown) => {
    return e instanceof ConfigError && e.key === 'data.train_size' && /exceeds the 10 examples available/.test(e.message);
  });
});

test('folder: JSONL file and captions.jsonl with labels', async () => {
  const ds = await loadDataset(config({ path: join(root, 'jsonl', 'data.jsonl'), train_size: 8, eval_size: 4 }));
  assert.deepEqual(ds.classNames, ['green thing', 'red thing']);
  for (let i = 0; i < 8; i++) {
    const ex = ds.train.get(i);
    assert.ok(ex.caption.endsWith(ds.classNames[ex.label]));
    const green = ex.image[1] > 0.9 && ex.image[0] < 0.1;
    assert.equal(green, ds.classNames[ex.label] === 'green thing');
  }
  const one = await loadDataset(config({ path: join(root, 'with-captions'), train_size: 1, eval_size: 0 }));
  assert.equal(one.train.get(0).caption, 'white');
  assert.equal(one.eval.size, 0);
});

test('folder: errors name the problem', async () => {
  const rejects = (data: Partial<TrainConfig['data']>, key: string, pattern: RegExp) =>
    assert.rejects(loadDataset(config({ train_size: 1, eval_size: 0, ...data })), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key);
      assert.match(e.message, pattern);
      return true;
    });
  await rejects({ path: join(root, 'nope') }, 'data.path', /no such file or folder: .*nope/);
  await rejects({ path: null }, 'data.path', /needs data.path/);
  await rejects({ path: join(root, 'corrupt'), train_size: 2 }, 'data.path', /cannot decode image .*bad\.png: /);
  await rejects({ path: join(root, 'empty') }, 'data.path', /no images in/);
  await rejects({ path: join(root, 'bad.jsonl') }, 'data.path', /bad\.jsonl:2: invalid JSON/);
  await rejects({ path: join(root, 'nocaption.jsonl') }, 'data.path', /nocaption\.jsonl:1: "caption" must be a string/);
  await rejects({ path: join(root, 'jsonl', 'data.jsonl'), image_size: 3 }, 'data.image_size', /got 3/);
});
