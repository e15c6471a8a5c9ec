/**
 * JSON Schema of a (partial) TrainConfig, with a description and the default of every field, generated from the
 * config declaration (models/config-fields.ts): the bounds here are the bounds the trainer checks
 * (test/config-bounds.test.ts walks this schema to prove it).
 */
import { CONFIG_FIELDS, meaning, type Field, type LeafField } from '../../models/index.js';

type Schema = Record<string, unknown>;

function leafSchema(f: LeafField): Schema {
  const nullable = 'nullable' in f && f.nullable;
  const type = (t: string) => (nullable ? [t, 'null'] : t);
  const description = meaning(f);
  switch (f.kind) {
    case 'integer':
    case 'number': {
      const bounds: Schema = {
        minimum: f.min,
        maximum: f.max,
        exclusiveMinimum: f.exclusiveMin,
        exclusiveMaximum: f.exclusiveMax,
        multipleOf: f.multipleOf,
      };
      for (const k of Object.keys(bounds)) if (bounds[k] === undefined) delete bounds[k];
      return { type: type(f.kind), ...bounds, description, default: f.default };
    }
    case 'enum':
      return { enum: [...f.values], description, default: f.default };
    case 'text':
      return { type: type('string'), minLength: 1, description, default: f.default };
    case 'names':
      return { type: type('array'), minItems: 1, items: { type: 'string', minLength: 1 }, description, default: f.default };
    case 'templates':
      return {
        oneOf: [{ const: 'dataset' }, { type: 'array', minItems: 1, items: { type: 'string', pattern: '\\{\\}' } }],
        description,
        default: f.default,
      };
  }
}

function toSchema(f: Field): Schema {
  if (f.kind !== 'group') return leafSchema(f);
  const properties: Record<string, Schema> = {};
  for (const [name, child] of Object.entries(f.fields)) properties[name] = toSchema(child);
  return { type: 'object', additionalProperties: false, description: f.doc, properties };
}

export const CONFIG_SCHEMA: Schema = toSchema(CONFIG_FIELDS);

/** The sub-schema for a dotted config path ('mask.image_ratio'), or null when the path names no config field. */
export function schemaAtPath(path: string): Schema | null {
  let node: Schema | undefined = CONFIG_SCHEMA;
  for (const part of path.split('.')) {
    const props = node?.properties as Record<string, Schema> | undefined;
    node = props && Object.prototype.hasOwnProperty.call(props, part) ? props[part] : undefined;
    if (!node) return null;
  }
  return node;
}

/** Every dotted path of the config, leaves and groups. */
export function configPaths(schema: Schema = CONFIG_SCHEMA, prefix = ''): string[] {
  const props = schema.properties as Record<string, Schema> | undefined;
  if (!props) return [];
  return Object.entries(props).flatMap(([k, s]) => [prefix + k, ...configPaths(s, `${prefix}${k}.`)]);
}
