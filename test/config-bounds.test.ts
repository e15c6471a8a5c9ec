/**
 * A bound in the JSON Schema is the bound the trainer enforces: for every bound and enum of the generated config
 * schema, the value just outside is refused both by the schema (ajv) and by the trainer's checkConfig, naming the
 * field, and the bound itself (or, for an exclusive bound, the value just inside) is accepted by both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass } from 'ajv';
import { boundProblems, checkConfig } from '../models/check-config.js';
import { resolveConfig, type TrainConfig } from '../models/config.js';
import { CONFIG_SCHEMA, configPaths, schemaAtPath } from '../framework/spec/config-schema.js';
import { setPath } from '../framework/spec/config-paths.js';

const Ajv = (createRequire(import.meta.url)('ajv') as { default: typeof AjvClass }).default;
const ajv = new Ajv({ strict: false });

/** A small valid config in which the cross-field rules stay quiet when one field moves to its bound (tuning on, so
 * that tune.base_lr may be set; a masked run, so that a reconstruction weight may be). */
const BASE: TrainConfig = resolveConfig({
  model: { preset: 'tiny' },
  data: { train_size: 128, eval_size: 32, image_size: 16 },
  mask: { image_ratio: 0.5 },
  train: { steps: 10, batch_size: 16 },
  tune: { steps: 1 },
});

/** Fields whose declared range is wider than what a cross-field rule allows near one end, and that rule's message. */
const NARROWED_BY_CROSS_FIELD_RULE: Record<string, RegExp> = {
  // Text masking must keep the start token and one more: near 1 the ratio is refused by that rule, not by its bound.
  'mask.text_ratio': /^mask\.text_ratio: [\d.]+ keeps 1 of \d+ tokens/,
};

/** Keywords of a leaf that are no bound; any other keyword must be exercised below, or the test fails. */
const NOT_BOUNDS = new Set(['type', 'description', 'default']);
const EXERCISED = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'enum', 'minLength', 'oneOf', 'minItems', 'items']);

type Case = { value: unknown; why: string };

function casesOf(s: Record<string, unknown>): { refused: Case[]; accepted: Case[] } {
  const refused: Case[] = [];
  const accepted: Case[] = [];
  const types = [s.type].flat();
  const integer = types.includes('integer');
  // Integers step by 1; numbers by a step far below any bound's scale but well above rounding at it.
  const step = (b: number) => (integer ? 1 : Math.max(1e-9, Math.abs(b) * 1e-9));
  if (typeof s.minimum === 'number') {
    refused.push({ value: s.minimum - step(s.minimum), why: 'just below minimum' });
    accepted.push({ value: s.minimum, why: 'the minimum' });
  }
  if (typeof s.maximum === 'number') {
    refused.push({ value: s.maximum + step(s.maximum), why: 'just above maximum' });
    accepted.push({ value: s.maximum, why: 'the maximum' });
  }
  if (typeof s.exclusiveMinimum === 'number') {
    refused.push({ value: s.exclusiveMinimum, why: 'the exclusive minimum' });
    accepted.push({ value: s.exclusiveMinimum + step(s.exclusiveMinimum), why: 'just above the exclusive minimum' });
  }
  if (typeof s.exclusiveMaximum === 'number') {
    refused.push({ value: s.exclusiveMaximum, why: 'the exclusive maximum' });
    accepted.push({ value: s.exclusiveMaximum - step(s.exclusiveMaximum), why: 'just below the exclusive maximum' });
  }
  if (typeof s.multipleOf === 'number') {
    const lowest = typeof s.minimum === 'number' ? s.minimum : s.multipleOf;
    refused.push({ value: lowest + 1, why: `not a multiple of ${s.multipleOf}` });
    accepted.push({ value: lowest + s.multipleOf, why: `a multiple of ${s.multipleOf}` });
  }
  if (integer && typeof s.minimum === 'number') refused.push({ value: s.minimum + 0.5, why: 'not an integer' });
  if (Array.isArray(s.enum)) {
    for (const v of s.enum) accepted.push({ value: v, why: 'an allowed value' });
    refused.push({ value: `not-${String(s.enum[0])}`, why: 'not an allowed value' });
  }
  if (typeof s.minLength === 'number') {
    refused.push({ value: 'x'.repeat(s.minLength - 1), why: 'shorter than minLength' });
    accepted.push({ value: 'x'.repeat(s.minLength), why: 'minLength long' });
  }
  if (typeof s.minItems === 'number') {
    refused.push({ value: [], why: 'fewer than minItems' });
    accepted.push({ value: Array.from({ length: s.minItems }, (_, i) => `name${i}`), why: 'minItems long' });
  }
  if ((s.items as Record<string, unknown> | undefined)?.minLength === 1) refused.push({ value: ['a', ''], why: 'an empty item' });
  if (s.oneOf) {
    accepted.push({ value: 'dataset', why: 'the const' }, { value: ['a photo of a {}.'], why: 'a list of templates' });
    refused.push({ value: [], why: 'an empty list' }, { value: ['no placeholder'], why: 'a template without {}' }, { value: 'other', why: 'another name' });
  }
  if (types.includes('null')) accepted.push({ value: null, why: 'null on a nullable field' });
  else refused.push({ value: null, why: 'null on a field that is not nullable' });
  return { refused, accepted };
}

const problemsOf = (problems: string[], path: string) => problems.filter((p) => p.startsWith(`${path}: `) || p.startsWith(`${path}[`));

test('the base config of this test passes both the schema and the trainer', () => {
  assert.deepEqual(checkConfig(BASE), []);
  assert.ok(ajv.validate(CONFIG_SCHEMA, BASE), JSON.stringify(ajv.errors));
});

test('every bound and enum of the JSON Schema is the bound the trainer enforces', () => {
  let bounds = 0;
  for (const path of configPaths()) {
    const s = schemaAtPath(path)!;
    if (s.properties) continue;
    for (const keyword of Object.keys(s)) {
      assert.ok(NOT_BOUNDS.has(keyword) || EXERCISED.has(keyword), `${path}: schema keyword "${keyword}" is not exercised by this test`);
      if (EXERCISED.has(keyword)) bounds++;
    }
    const validate = ajv.compile(s);
    const { refused, accepted } = casesOf(s);
    for (const { value, why } of refused) {
      const config = setPath(BASE, path, value);
      assert.equal(validate(value), false, `${path} = ${JSON.stringify(value)} (${why}): the schema accepts it`);
      assert.ok(
        problemsOf(checkConfig(config), path).length > 0,
        `${path} = ${JSON.stringify(value)} (${why}): the schema refuses it but the trainer's checkConfig accepts it`,
      );
    }
    for (const { value, why } of accepted) {
      const config = setPath(BASE, path, value);
      assert.ok(validate(value), `${path} = ${JSON.stringify(value)} (${why}): the schema refuses it: ${JSON.stringify(validate.errors)}`);
      const problems = problemsOf(checkConfig(config), path);
      const narrowing = NARROWED_BY_CROSS_FIELD_RULE[path];
      const unexplained = problems.filter((p) => !narrowing?.test(p));
      assert.deepEqual(unexplained, [], `${path} = ${JSON.stringify(value)} (${why}): the schema accepts it but the trainer refuses it`);
      assert.deepEqual(problemsOf(boundProblems(config), path), [], `${path} = ${JSON.stringify(value)} (${why}): refused by a declared bound`);
    }
  }
  // Every numeric leaf has a bound and the enums, path and templates have theirs: a walk that finds few is broken.
  assert.ok(bounds >= 50, `only ${bounds} bounds found in the schema`);
});

test('the cross-field rule that narrows mask.text_ratio is the one met at its exclusive maximum', () => {
  const problems = checkConfig(setPath(BASE, 'mask.text_ratio', 1 - 1e-9));
  assert.ok(problems.some((p) => NARROWED_BY_CROSS_FIELD_RULE['mask.text_ratio'].test(p)), JSON.stringify(problems));
});
