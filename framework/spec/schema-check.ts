/** Validation of spec data against the JSON Schema with ajv, with ajv's errors turned into readable problems. */
import ajvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { SPEC_SCHEMA } from './spec-schema.js';
import { closest, show, type SpecProblem } from './spec-error.js';
import type { YamlSource } from './yaml-source.js';

// ajv 8 is CommonJS and exports its class as `default`; Node's ESM gives its whole module.exports as the default
// import. A static import (not createRequire) so that esbuild bundles ajv into the GPU bundle (scripts/gpu).
const Ajv = ajvModule.default;
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
ajv.addSchema(SPEC_SCHEMA, 'spec');
const validateSpec = ajv.getSchema('spec') as ValidateFunction;
const fieldValidators = new Map<string, ValidateFunction>();

/** A validator for one config field, by JSON pointer into the spec schema's config definition. */
function fieldValidator(configPath: string): ValidateFunction {
  let v = fieldValidators.get(configPath);
  if (!v) {
    const pointer = 'spec#/definitions/config/' + configPath.split('.').map((p) => `properties/${p}`).join('/');
    v = ajv.getSchema(pointer) as ValidateFunction;
    fieldValidators.set(configPath, v);
  }
  return v;
}

/** Problems of a whole spec file's data. */
export function checkAgainstSchema(source: YamlSource): SpecProblem[] {
  if (validateSpec(source.data)) return [];
  return explain(validateSpec.errors ?? [], source.data, source, []);
}

/** Problems of one value meant for config path `configPath`, located at `at` in the source. */
export function checkFieldValue(configPath: string, value: unknown, source: YamlSource, at: (string | number)[]): SpecProblem[] {
  const v = fieldValidator(configPath);
  if (v(value)) return [];
  return explain(v.errors ?? [], value, source, at);
}

function explain(errors: ErrorObject[], root: unknown, source: YamlSource, prefix: (string | number)[]): SpecProblem[] {
  // A failed oneOf reports every branch; keep one message at the oneOf itself. Keep the deepest error per place.
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const kept = errors.filter((e) => e.keyword === 'oneOf' || ![...oneOfPaths].some((p) => e.instancePath.startsWith(p)));
  const byPlace = new Map<string, ErrorObject>();
  for (const e of kept) {
    const place = e.instancePath + (e.keyword === 'additionalProperties' ? '/' + (e.params as { additionalProperty: string }).additionalProperty : '');
    if (!byPlace.has(place) || e.keyword === 'additionalProperties') byPlace.set(place, e);
  }
  return [...byPlace.values()].map((e) => {
    const parts = [...prefix, ...pointerParts(e.instancePath)];
    const found = valueAt(root, pointerParts(e.instancePath));
    const isKeyProblem = e.keyword === 'additionalProperties';
    const keyParts = isKeyProblem ? [...parts, (e.params as { additionalProperty: string }).additionalProperty] : parts;
    return { where: source.locate(keyParts, { key: isKeyProblem }), key: dotted(keyParts), message: describe(e, found) };
  });
}

function describe(e: ErrorObject, found: unknown): string {
  const p = e.params as Record<string, unknown>;
  const schema = e.parentSchema as Record<string, unknown> | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((schema?.properties as object) ?? {});
      const guess = closest(String(p.additionalProperty), allowed);
      return `unknown key ${show(p.additionalProperty)}${guess ? ` (did you mean "${guess}"?)` : ''}; allowed keys: ${allowed.join(', ')}`;
    }
    case 'required':
      return `missing required key ${show(p.missingProperty)}`;
    case 'type':
      return `found ${show(found)} (${typeName(found)}); allowed: ${[p.type].flat().map((t) => TYPE_WORDS[t as string] ?? t).join(' or ')}`;
    case 'enum':
      return `found ${show(found)}; allowed: one of ${(p.allowedValues as unknown[]).map(show).join(', ')}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `found ${show(found)}; out of range, allowed: ${rangeText(schema)}`;
    case 'multipleOf':
      return `found ${show(found)}; allowed: ${rangeText(schema)}, a multiple of ${p.multipleOf}`;
    case 'minItems':
      return found !== null && Array.isArray(found) && found.length === 0 ? 'empty list; give at least one value' : `needs at least ${p.limit} items`;
    case 'minProperties':
      return 'empty mapping; give at least one entry';
    case 'uniqueItems':
      return `found duplicate values ${show(found)}; each value may appear once`;
    case 'pattern':
      return `found ${show(found)}; allowed: ${schema?.description ?? `text matching ${p.pattern}`}`;
    case 'oneOf':
      return `found ${show(found)}; allowed: ${schema?.description ?? 'see the schema'}`;
    default:
      return `found ${show(found)}; ${e.message ?? 'not allowed'}`;
  }
}

const TYPE_WORDS: Record<string, string> = { object: 'a mapping', array: 'a list', integer: 'an integer', number: 'a number', string: 'text', boolean: 'true or false', null: 'null' };

function rangeText(schema: Record<string, unknown> | undefined): string {
  if (!schema) return 'see the schema';
  const lo = schema.minimum !== undefined ? `>= ${schema.minimum}` : schema.exclusiveMinimum !== undefined ? `> ${schema.exclusiveMinimum}` : '';
  const hi = schema.maximum !== undefined ? `<= ${schema.maximum}` : schema.exclusiveMaximum !== undefined ? `< ${schema.exclusiveMaximum}` : '';
  const kind = schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.includes('integer')) ? 'an integer' : 'a number';
  return [kind, [lo, hi].filter(Boolean).join(' and ')].filter(Boolean).join(' ');
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function pointerParts(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function valueAt(root: unknown, parts: (string | number)[]): unknown {
  let v: unknown = root;
  for (const p of parts) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

/** `axes.mask.image_ratio[2]`-style rendering of a path. */
export function dotted(parts: (string | number)[]): string {
  return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
