/**
 * The kinds of field a TrainConfig is declared with (models/config-fields.ts), and what each kind means in every place
 * the config is used: the TypeScript type (inferred, so the type cannot drift from the declaration), the default, the
 * trainer's check of one value, and the words that describe what is allowed (shared by the checker's messages and the
 * generated reference). framework/spec/config-schema.ts turns the same declaration into the JSON Schema.
 */

/** Numeric bounds as JSON Schema names them; an integer field uses min, max and multipleOf only. */
export interface Bounds {
  min?: number;
  max?: number;
  exclusiveMin?: number;
  exclusiveMax?: number;
  multipleOf?: number;
}

interface Described {
  /** One line: what the field does. */
  doc: string;
  /** Why a bound is where it is, when that is not obvious; shown in the checker's messages and the reference. */
  why?: string;
}

export interface NumericField<N extends boolean = boolean> extends Described, Bounds {
  kind: 'integer' | 'number';
  nullable: N;
  default: N extends true ? number | null : number;
}

export interface EnumField<V extends string = string> extends Described {
  kind: 'enum';
  values: readonly V[];
  default: V;
}

/** A non-empty string (a file or folder), or null when nullable. */
export interface TextField<N extends boolean = boolean> extends Described {
  kind: 'text';
  nullable: N;
  default: N extends true ? string | null : string;
}

/** 'dataset' (the dataset's own prompt templates) or a non-empty list of templates, each with '{}' for the class name. */
export interface TemplatesField extends Described {
  kind: 'templates';
  default: 'dataset' | readonly string[];
}

/** A non-empty list of non-empty names (class names), or null when nullable. */
export interface NamesField<N extends boolean = boolean> extends Described {
  kind: 'names';
  nullable: N;
  default: N extends true ? readonly string[] | null : readonly string[];
}

export type LeafField = NumericField | EnumField | TextField | TemplatesField | NamesField;

export interface GroupField<F extends Record<string, Field> = Record<string, Field>> {
  kind: 'group';
  doc: string;
  fields: F;
}

export type Field = LeafField | GroupField;

/** The TypeScript type of a config value of field F (groups become objects of their fields' types). */
export type ValueOf<F> = F extends GroupField<infer G>
  ? { -readonly [K in keyof G]: ValueOf<G[K]> }
  : F extends NumericField<infer N>
    ? N extends true ? number | null : number
    : F extends EnumField<infer V>
      ? V
      : F extends TextField<infer N>
        ? N extends true ? string | null : string
        : F extends TemplatesField
          ? 'dataset' | string[]
          : F extends NamesField<infer N>
            ? N extends true ? string[] | null : string[]
            : never;

// Constructors: each checks its default against its own type, and keeps the literal types the inference needs.

export function integer(bounds: Bounds, def: number, doc: string, why?: string): NumericField<false> {
  return { kind: 'integer', nullable: false, ...bounds, default: def, doc, ...(why ? { why } : {}) };
}

export function nullableInteger(bounds: Bounds, def: number | null, doc: string, why?: string): NumericField<true> {
  return { kind: 'integer', nullable: true, ...bounds, default: def, doc, ...(why ? { why } : {}) };
}

export function number(bounds: Bounds, def: number, doc: string, why?: string): NumericField<false> {
  return { kind: 'number', nullable: false, ...bounds, default: def, doc, ...(why ? { why } : {}) };
}

export function nullableNumber(bounds: Bounds, def: number | null, doc: string, why?: string): NumericField<true> {
  return { kind: 'number', nullable: true, ...bounds, default: def, doc, ...(why ? { why } : {}) };
}

export function oneOf<const V extends string>(values: readonly V[], def: NoInfer<V>, doc: string): EnumField<V> {
  return { kind: 'enum', values, default: def, doc };
}

export function nullableText(def: string | null, doc: string): TextField<true> {
  return { kind: 'text', nullable: true, default: def, doc };
}

export function nullableNames(def: readonly string[] | null, doc: string): NamesField<true> {
  return { kind: 'names', nullable: true, default: def, doc };
}

export function templates(def: 'dataset' | readonly string[], doc: string): TemplatesField {
  return { kind: 'templates', default: def, doc };
}

export function group<const F extends Record<string, Field>>(doc: string, fields: F): GroupField<F> {
  return { kind: 'group', doc, fields };
}

/** Every leaf of a group with its dotted path ('mask.image_ratio'), in declaration order. */
export function leaves(root: GroupField, prefix = ''): { path: string; field: LeafField }[] {
  return Object.entries(root.fields).flatMap(([name, field]) =>
    field.kind === 'group' ? leaves(field, `${prefix}${name}.`) : [{ path: prefix + name, field }],
  );
}

/** The defaults of a group as a fresh object (lists copied, so a caller may change the result). */
export function defaultsOf<G extends GroupField>(root: G): ValueOf<G> {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(root.fields)) {
    out[name] = field.kind === 'group' ? defaultsOf(field) : Array.isArray(field.default) ? [...field.default] : field.default;
  }
  return out as ValueOf<G>;
}

/** The field's line of documentation, with the reason for its bound when it has one. */
export function meaning(f: LeafField): string {
  return f.why ? `${f.doc} Bound: ${f.why}.` : f.doc;
}

const hasBoth = (f: Bounds) => (f.min ?? f.exclusiveMin) !== undefined && (f.max ?? f.exclusiveMax) !== undefined;

/** '[0, 1)' for a field bounded on both sides. */
function interval(f: Bounds): string {
  const lo = f.min !== undefined ? `[${f.min}` : `(${f.exclusiveMin}`;
  const hi = f.max !== undefined ? `${f.max}]` : `${f.exclusiveMax})`;
  return `${lo}, ${hi}`;
}

function range(f: Bounds): string {
  if (hasBoth(f)) return `in ${interval(f)}`;
  if (f.min !== undefined) return `>= ${f.min}`;
  if (f.exclusiveMin !== undefined) return `> ${f.exclusiveMin}`;
  if (f.max !== undefined) return `<= ${f.max}`;
  if (f.exclusiveMax !== undefined) return `< ${f.exclusiveMax}`;
  return '';
}

/**
 * What a field allows, in words: 'an integer >= 1', 'a number in [0, 1)', 'one of random, prioritized, truncate'.
 * `quote` renders a literal value (plain in messages, `code` in the Markdown reference).
 */
export function allowedText(f: LeafField, quote: (v: string) => string = (v) => v): string {
  const orNull = 'nullable' in f && f.nullable ? `${quote('null')} or ` : '';
  switch (f.kind) {
    case 'integer':
    case 'number': {
      const what = [f.kind === 'integer' ? 'an integer' : 'a number', range(f)].filter(Boolean).join(' ');
      return orNull + what + (f.multipleOf !== undefined ? `, a multiple of ${f.multipleOf}` : '');
    }
    case 'enum':
      return `one of ${f.values.map(quote).join(', ')}`;
    case 'text':
      return `${orNull}a non-empty path`;
    case 'templates':
      return `${quote('dataset')} or a non-empty list of templates, each with ${quote('{}')} for the class name`;
    case 'names':
      return `${orNull}a non-empty list of non-empty names`;
  }
}

const inBounds = (f: Bounds, v: number) =>
  (f.min === undefined || v >= f.min) &&
  (f.max === undefined || v <= f.max) &&
  (f.exclusiveMin === undefined || v > f.exclusiveMin) &&
  (f.exclusiveMax === undefined || v < f.exclusiveMax);

/**
 * The trainer's check of one value against its declared field: null when allowed, else the problem, starting with the
 * dotted key, then the value found and what is allowed (the field's `why` in brackets).
 */
export function fieldProblem(path: string, f: LeafField, v: unknown): string | null {
  if (v === null && 'nullable' in f && f.nullable) return null;
  const why = f.why ? ` (${f.why})` : '';
  switch (f.kind) {
    case 'integer':
    case 'number': {
      const isNumber = typeof v === 'number' && Number.isFinite(v) && (f.kind === 'number' || Number.isInteger(v));
      if (!isNumber) return `${path}: ${String(v)} must be ${allowedText(f)}${why}`;
      if (!inBounds(f, v)) return hasBoth(f) ? `${path}: ${v} is out of range; allowed ${interval(f)}${why}` : `${path}: ${v} must be ${allowedText(f)}${why}`;
      if (f.multipleOf !== undefined && v % f.multipleOf !== 0) return `${path}: ${v} must be a multiple of ${f.multipleOf}${why}`;
      return null;
    }
    case 'enum':
      return typeof v === 'string' && (f.values as readonly string[]).includes(v) ? null : `${path}: "${String(v)}" is not one of ${f.values.join(', ')}`;
    case 'text':
      return typeof v === 'string' && v.length > 0 ? null : `${path}: ${JSON.stringify(v)} must be ${allowedText(f)}`;
    case 'templates': {
      if (v === 'dataset') return null;
      if (!Array.isArray(v) || v.length === 0) return `${path}: must be ${allowedText(f)}, got ${JSON.stringify(v)}`;
      const bad = v.findIndex((tpl) => typeof tpl !== 'string' || !tpl.includes('{}'));
      return bad < 0 ? null : `${path}[${bad}]: "${String(v[bad])}" has no '{}' for the class name`;
    }
    case 'names': {
      if (!Array.isArray(v) || v.length === 0) return `${path}: must be ${allowedText(f)}, got ${JSON.stringify(v)}`;
      const bad = v.findIndex((name) => typeof name !== 'string' || name.length === 0);
      return bad < 0 ? null : `${path}[${bad}]: ${JSON.stringify(v[bad])} is not a non-empty name`;
    }
  }
}
