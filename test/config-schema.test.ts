import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULTS, PRESETS, resolveConfig } from '../models/config.js';
import { CONFIG_SCHEMA, configPaths, schemaAtPath } from '../framework/spec/config-schema.js';
import { SCHEMA_FILE, schemaFileText } from '../framework/spec/write-schema.js';
import { flattenConfig } from '../framework/spec/config-paths.js';

test('the committed JSON Schema file is the generated one (run `npm run schema` after changing the config)', () => {
  assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), schemaFileText());
});

test('every field of DEFAULTS is described in the schema with its default, and the schema has no other fields', () => {
  const leaves = Object.keys(flattenConfig(DEFAULTS)).sort();
  const schemaLeaves = configPaths().filter((p) => schemaAtPath(p)!.properties === undefined).sort();
  assert.deepEqual(schemaLeaves, leaves);
  for (const path of leaves) {
    const field = schemaAtPath(path)!;
    assert.ok(typeof field.description === 'string' && field.description.length > 10, `${path} has a description`);
    const expected = path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], DEFAULTS);
    assert.deepEqual(field.default, expected, `${path} default`);
  }
  assert.equal(CONFIG_SCHEMA.additionalProperties, false);
});

test('every preset resolves to a complete config that keeps the user values over the preset', () => {
  for (const name of Object.keys(PRESETS)) {
    const config = resolveConfig({ model: { preset: name, image: { depth: 1 } } });
    assert.equal(config.model.preset, name);
    assert.equal(config.model.image.depth, 1);
    assert.equal(config.model.image.width, PRESETS[name].image!.width);
    assert.deepEqual(Object.keys(flattenConfig(config)).sort(), Object.keys(flattenConfig(DEFAULTS)).sort());
  }
  assert.throws(() => resolveConfig({ model: { preset: 'huge' } }), /unknown preset "huge"; known presets: tiny/);
});
