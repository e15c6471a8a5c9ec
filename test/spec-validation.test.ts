import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { checkConfig } from '../models/check-config.js';
import { expandGrid } from '../framework/grid/expand.js';
import { loadSpec } from '../framework/spec/load-spec.js';
import { SpecError } from '../framework/spec/spec-error.js';
import { runCli, writeFiles, ROOT } from './helpers.js';

/** Each bad spec must fail with a message naming file:line:col, the key, what was found and what is allowed. */
const badSpecs: { name: string; yaml: string; extra?: Record<string, string>; expect: RegExp[] }[] = [
  { name: 'YAML syntax error', yaml: 'name: a\naxes:\n  mask.image_ratio: [0, 0.5\n', expect: [/spec\.yaml:\d+:\d+: YAML syntax error/] },
  { name: 'missing name', yaml: 'description: x\n', expect: [/spec\.yaml:1:1: missing required key "name"/] },
  { name: 'unknown top-level key (typo)', yaml: 'name: a\naxis:\n  mask.image_ratio: [0]\n', expect: [/spec\.yaml:2:1: axis: unknown key "axis" \(did you mean "axes"\?\); allowed keys: name, description/] },
  { name: 'unknown config key in base', yaml: 'name: a\nbase:\n  train:\n    batchsize: 8\n', expect: [/spec\.yaml:4:5: base\.train\.batchsize: unknown key "batchsize" \(did you mean "batch_size"\?\)/] },
  { name: 'wrong type', yaml: 'name: a\nbase:\n  train: { steps: ten }\n', expect: [/spec\.yaml:3:19: base\.train\.steps: found "ten" \(string\); allowed: an integer or null/] },
  { name: 'mask ratio of 1.0', yaml: 'name: a\nbase:\n  mask: { image_ratio: 1.0 }\n', expect: [/spec\.yaml:3:24: base\.mask\.image_ratio: found 1; out of range, allowed: a number >= 0 and < 1/] },
  { name: 'batch size 0 in an axis', yaml: 'name: a\naxes:\n  train.batch_size: [8, 0]\n', expect: [/spec\.yaml:3:25: axes\.train\.batch_size\[1\]: found 0; out of range, allowed: an integer >= 2/] },
  { name: 'image width not a multiple of 4', yaml: 'name: a\nbase:\n  model: { image: { width: 30 } }\n', expect: [/spec\.yaml:3:28: base\.model\.image\.width: found 30; allowed: an integer >= 4, a multiple of 4/] },
  { name: 'empty axis', yaml: 'name: a\naxes:\n  mask.image_ratio: []\n', expect: [/spec\.yaml:3:21: axes\.mask\.image_ratio: empty list; give at least one value/] },
  { name: 'unknown dataset', yaml: 'name: a\nbase:\n  data: { dataset: cifar10 }\n', expect: [/spec\.yaml:3:20: base\.data\.dataset: found "cifar10"; allowed: one of "shapes", "glyphs", "glyphs-faint", "glyphs-24", "emoji", "fashion-mnist", "folder"/] },
  { name: 'unknown preset in an axis', yaml: 'name: a\naxes:\n  model.preset: [tiny, gigantic]\n', expect: [/spec\.yaml:3:24: axes\.model\.preset\[1\]: found "gigantic"; allowed: one of "tiny"/] },
  { name: 'axis over an unknown config path', yaml: 'name: a\naxes:\n  mask.image_ration: [0.5]\n', expect: [/spec\.yaml:3:\d+: axes\.mask\.image_ration: unknown config path "mask\.image_ration" \(did you mean "mask\.image_ratio"\?\)/] },
  { name: 'an axis both in axes and zip', yaml: 'name: a\naxes:\n  train.batch_size: [8]\nzip:\n  - { train.batch_size: [8, 16], mask.image_ratio: [0, 0.5] }\n', expect: [/spec\.yaml:5:7: zip\[0\]\.train\.batch_size: train\.batch_size is set both in axes and in zip/] },
  { name: 'zip lists of different lengths', yaml: 'name: a\nzip:\n  - mask.image_ratio: [0, 0.5]\n    train.batch_size: [8]\n', expect: [/spec\.yaml:3:5: zip\[0\]: lists of a zip group vary together and must have the same length; found mask\.image_ratio: 2, train\.batch_size: 1/] },
  { name: 'variant with an out-of-range value', yaml: 'name: a\naxes:\n  text_mask:\n    random: { mask.text_ratio: 1.5 }\n', expect: [/spec\.yaml:4:32: axes\.text_mask\.random\.mask\.text_ratio \(config mask\.text_ratio\): found 1\.5; out of range/] },
  { name: 'variant with an unknown strategy', yaml: 'name: a\naxes:\n  text_mask:\n    odd: { mask.text_strategy: shuffle }\n', expect: [/spec\.yaml:4:32: .*found "shuffle"; allowed: one of "random", "prioritized", "truncate"/] },
  { name: 'seed as an axis', yaml: 'name: a\naxes:\n  seed: [0, 1]\n', expect: [/spec\.yaml:3:\d+: axes\.seed: seeds are an axis of their own/] },
  { name: 'duplicate seeds', yaml: 'name: a\nseeds: [0, 1, 0]\n', expect: [/spec\.yaml:2:8: seeds: found duplicate values/] },
  { name: 'exclude on something that is not an axis', yaml: 'name: a\naxes:\n  mask.image_ratio: [0, 0.5]\nexclude:\n  - { train.batch_size: 8 }\n', expect: [/spec\.yaml:5:7: exclude\[0\]\.train\.batch_size: "train\.batch_size" is not an axis/] },
  { name: 'report rows naming no axis', yaml: 'name: a\naxes:\n  mask.image_ratio: [0]\nreport:\n  rows: batch\n', expect: [/spec\.yaml:5:9: report\.rows: found "batch"; allowed: one of the axes "mask\.image_ratio"/] },
  { name: 'baseline value not on the axis', yaml: 'name: a\naxes:\n  mask.image_ratio: [0, 0.5]\nreport:\n  baseline: { mask.image_ratio: 0.25 }\n', expect: [/spec\.yaml:5:33: report\.baseline\.mask\.image_ratio: found 0\.25; allowed: one of the axis values 0, 0\.5/] },
  { name: 'extends a missing file', yaml: 'name: a\nextends: nowhere.yaml\n', expect: [/spec\.yaml:2:10: extends: cannot read "nowhere\.yaml"/] },
  { name: 'extends in a circle', yaml: 'name: a\nextends: b.yaml\n', extra: { 'b.yaml': 'extends: spec.yaml\n' }, expect: [/circular extends: .*spec\.yaml -> .*b\.yaml -> .*spec\.yaml/] },
  { name: 'an error in the parent names the parent file', yaml: 'name: a\nextends: b.yaml\n', extra: { 'b.yaml': 'base:\n  train: { batch_size: -1 }\n' }, expect: [/b\.yaml:2:24: base\.train\.batch_size: found -1/] },
  { name: 'patch size not dividing the image (cross-field)', yaml: 'name: a\nbase:\n  data: { image_size: 32 }\naxes:\n  model.image.patch_size: [4, 5]\n', expect: [/spec\.yaml:5:31: cell \{model\.image\.patch_size=5\}: model\.image\.patch_size/] },
  { name: 'batch bigger than the dataset (cross-field)', yaml: 'name: a\nbase:\n  data: { train_size: 100 }\n  train: { batch_size: 500 }\n', expect: [/spec\.yaml:4:24: base: train\.batch_size: 500/] },
];

for (const c of badSpecs) {
  test(`bad spec: ${c.name}`, () => {
    const dir = writeFiles({ 'spec.yaml': c.yaml, ...c.extra });
    assert.throws(
      () => expandGrid(loadSpec(join(dir, 'spec.yaml')), checkConfig),
      (err: unknown) => {
        assert.ok(err instanceof SpecError, `a SpecError, got ${String(err)}`);
        for (const re of c.expect) assert.match(err.message, re);
        return true;
      },
    );
  });
}

test('bad --set values are refused with the flag named', () => {
  const dir = writeFiles({ 'spec.yaml': 'name: a\n' });
  assert.throws(() => loadSpec(join(dir, 'spec.yaml'), { set: ['train.stepz=3'] }), /--set train\.stepz=3: unknown config field "train\.stepz" \(did you mean "train\.steps"\?\)/);
  assert.throws(() => loadSpec(join(dir, 'spec.yaml'), { set: ['mask.image_ratio=2'] }), /--set mask\.image_ratio=2 .*found 2; out of range/);
  assert.throws(() => loadSpec(join(dir, 'spec.yaml'), { set: ['train.steps'] }), /expected --set path=value/);
});

test('the CLI exits 2 on an invalid spec and writes nothing to the database', () => {
  const dir = writeFiles({ 'spec.yaml': 'name: a\nbase:\n  mask: { image_ratio: 1.5 }\n' });
  const db = join(dir, 'results.db');
  const run = runCli('sweep', [join(dir, 'spec.yaml'), '--db', db]);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /Invalid spec: 1 problem; nothing was run or recorded\.\n.*spec\.yaml:3:24: base\.mask\.image_ratio: found 1\.5/);
  assert.equal(existsSync(db), false);
});

test('the CLI reports a missing spec file and unknown flags with exit code 2', () => {
  const missing = runCli('sweep', ['experiments/nope.yaml', '--dry-run']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /experiments\/nope\.yaml: cannot read the spec file: no such file/);
  const flag = runCli('sweep', ['experiments/smoke.yaml', '--dryrun']);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /Unknown option '--dryrun'/);
});

test('--dry-run prints every cell with labels, hash and cost, and the count', () => {
  const run = runCli('sweep', ['experiments/smoke.yaml', '--dry-run', '--db', '/nonexistent/dir/x.db']);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.match(lines[0], /^smoke: 4 jobs \(dry run/);
  assert.equal(lines.filter((l) => /^\s+\d+\s+mask\.image_ratio=0(\.5)? seed=[01]\s+[0-9a-f]{16}\s+30\s+960\s+[\d.]+$/.test(l)).length, 4);
  assert.match(lines[lines.length - 1], /^total: 4 jobs, [\d.]+ TFLOPs/);
  assert.ok(readFileSync(join(ROOT, 'experiments/smoke.yaml'), 'utf8').includes('yaml-language-server: $schema='));
});

test('the example spec in the README is valid and expands as documented', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const example = /```yaml\n(# yaml-language-server[^\n]*\nname: example\n[\s\S]*?)```/.exec(readme);
  assert.ok(example, 'README has the example spec');
  const dir = writeFiles({ 'example.yaml': example[1] });
  const jobs = expandGrid(loadSpec(join(dir, 'example.yaml')), checkConfig);
  // 3 zipped mask/batch values x 3 text variants - 1 excluded + 1 included, times 2 seeds.
  assert.equal(jobs.length, (3 * 3 - 1 + 1) * 2);
  assert.ok(jobs.some((j) => j.config.mask.image_ratio === 0.9 && j.config.train.batch_size === 512));
});

test('every spec in experiments/ validates and expands into jobs the trainer accepts (flip-base.yaml is only a parent)', () => {
  const specs = readdirSync(join(ROOT, 'experiments')).filter((f) => f.endsWith('.yaml') && f !== 'flip-base.yaml');
  assert.ok(specs.length >= 10, `${specs.length} specs`);
  for (const file of specs) {
    const jobs = expandGrid(loadSpec(join(ROOT, 'experiments', file)), checkConfig);
    assert.ok(jobs.length > 0, `${file}: no jobs`);
  }
});
