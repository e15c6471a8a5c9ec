/**
 * Reading a spec: parse (keeping line/column), validate each file against the JSON Schema, follow `extends:`,
 * apply `--set`, check what the schema cannot (axis paths, zip lengths, axes in two places, report keys), and build
 * the ExperimentSpec that grid expansion works from. Every problem found is collected; SpecError carries them all.
 */
import { dirname, resolve, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { deepMerge, type PartialTrainConfig } from '../../models/index.js';
import type { ReportSpec } from '../store/types.js';
import { absoluteConfig, absoluteOverrides } from './data-paths.js';
import { CONFIG_PATHS, flattenConfig, isConfigGroup, isConfigPath, setPath } from './config-paths.js';
import { labelOf } from './label.js';
import { checkAgainstSchema, checkFieldValue, dotted } from './schema-check.js';
import { SpecError, closest, show, type Location, type SpecProblem } from './spec-error.js';
import type { Axis, AxisValue, CellPattern, ExperimentSpec, RunSettings } from './types.js';
import { YamlSource } from './yaml-source.js';

export const DEFAULT_REPORT_METRICS = ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_t2i_r1', 'train_seconds', 'train_flops', 'peak_memory_bytes'];

export interface LoadOptions {
  /** `--set path=value` overrides of the base config. */
  set?: string[];
}

type Raw = Record<string, unknown>;

const SEED_AXIS_MESSAGE = 'seeds are an axis of their own: write `seeds: [0, 1, 2]` at the top level';

/** One file of an `extends:` chain, its data already validated against the schema. */
interface Layer {
  source: YamlSource;
  data: Raw;
}

export function loadSpec(file: string, options: LoadOptions = {}): ExperimentSpec {
  const problems: SpecProblem[] = [];
  const layers = readChain(displayPath(file), []);
  const top = layers[layers.length - 1];

  // Merge the chain: later files override earlier ones; base merges deeply, axes by name, the rest replaces.
  let base: PartialTrainConfig = {};
  const baseWhere = new Map<string, Location>();
  const axesByName = new Map<string, Axis>();
  let zipLayer: Layer | null = null;
  const lastWith = (key: string): Layer | null => [...layers].reverse().find((l) => l.data[key] !== undefined) ?? null;
  const merged: Raw = {};
  for (const layer of layers) {
    const { data, source } = layer;
    Object.assign(merged, data);
    if (data.base) {
      base = deepMerge(base, data.base);
      for (const path of Object.keys(flattenConfig(data.base))) baseWhere.set(path, source.locate(['base', ...path.split('.')]));
    }
    if (data.axes) for (const axis of readAxes(layer, problems)) axesByName.set(axis.names[0], axis);
    if (data.zip) zipLayer = layer;
  }
  delete merged.extends;
  merged.base = base;
  merged.axes = Object.fromEntries(layers.flatMap((l) => Object.entries((l.data.axes as Raw) ?? {})));

  for (const assignment of options.set ?? []) {
    const applied = applySet(assignment, problems);
    if (applied) {
      base = setPath(base as Raw, applied.path, applied.value) as PartialTrainConfig;
      baseWhere.set(applied.path, applied.where);
    }
  }
  merged.base = base;

  const axes = [...axesByName.values()];
  if (zipLayer) axes.push(...readZip(zipLayer, axesByName, problems));

  const includeLayer = lastWith('include');
  const excludeLayer = lastWith('exclude');
  const include = includeLayer ? readCells(includeLayer, 'include', axes, problems) : [];
  const exclude = excludeLayer ? readCells(excludeLayer, 'exclude', axes, problems) : [];
  const seeds = (lastWith('seeds')?.data.seeds as number[] | undefined) ?? null;
  const reportLayer = lastWith('report');
  const report = readReport(reportLayer, axes, seeds, problems);

  const name = (lastWith('name')?.data.name as string | undefined) ?? '';
  if (problems.length > 0) throw new SpecError(problems);
  // Jobs get absolute data locations, whichever folder their executor runs them in (data-paths.ts); `merged`, the
  // spec as recorded, keeps them as written.
  const cwd = process.cwd();
  base = absoluteConfig(base as Raw, cwd) as PartialTrainConfig;
  const absoluteValues = <T extends { overrides: Record<string, unknown> }>(values: T[]): T[] => values.map((v) => ({ ...v, overrides: absoluteOverrides(v.overrides, cwd) }));
  return {
    name,
    description: (lastWith('description')?.data.description as string | undefined) ?? '',
    file: top.source.file,
    text: top.source.text,
    base,
    axes: axes.map((axis) => ({ ...axis, values: absoluteValues(axis.values) })),
    include: absoluteValues(include),
    exclude,
    seeds,
    report,
    run: (lastWith('run')?.data.run as RunSettings | undefined) ?? {},
    merged,
    baseWhere,
    where: top.source.locate([]),
  };
}

/** The files of an `extends:` chain, root first. Each is checked against the schema on its own. */
function readChain(file: string, visiting: string[]): Layer[] {
  const absolute = resolve(file);
  if (visiting.includes(absolute)) {
    throw new SpecError([{ where: { file, line: 1, col: 1 }, key: 'extends', message: `circular extends: ${[...visiting, absolute].map(displayPath).join(' -> ')}` }]);
  }
  const source = YamlSource.read(file);
  if (source.data === null || typeof source.data !== 'object' || Array.isArray(source.data)) {
    throw new SpecError([{ where: source.locate([]), key: '', message: `found ${show(source.data)}; a spec must be a mapping with at least a name (see README "Experiment specs")` }]);
  }
  const data = source.data as Raw;
  const problems = checkAgainstSchema(source).map((p) => explainAxisKey(p, data));
  // `name` is required of the file given on the command line only; a parent may be a bare set of shared settings.
  const ownProblems = visiting.length > 0 ? problems.filter((p) => !/missing required key "name"/.test(p.message)) : problems;
  if (ownProblems.length > 0) throw new SpecError(ownProblems);
  const layers: Layer[] = [];
  if (typeof data.extends === 'string') {
    const parent = resolve(dirname(absolute), data.extends);
    try {
      layers.push(...readChain(displayPath(parent), [...visiting, absolute]));
    } catch (err) {
      if (err instanceof SpecError && err.problems.length === 1 && /cannot read the spec file/.test(err.problems[0].message)) {
        throw new SpecError([{ where: source.locate(['extends']), key: 'extends', message: `cannot read ${show(data.extends)} (${displayPath(parent)}): no such file` }]);
      }
      throw err;
    }
  }
  layers.push({ source, data });
  return layers;
}

/** The schema reads an unknown dotted axis key as a variant group; say what was most likely meant instead. */
function explainAxisKey(problem: SpecProblem, data: Raw): SpecProblem {
  const match = /^axes\.(.+)$/.exec(problem.key);
  const name = match?.[1];
  if (name === 'seed') return { ...problem, message: SEED_AXIS_MESSAGE };
  if (!name || !name.includes('.') || isConfigPath(name) || !Object.prototype.hasOwnProperty.call(data.axes ?? {}, name)) return problem;
  const guess = closest(name, CONFIG_PATHS);
  return { ...problem, message: `unknown config path ${show(name)}${guess ? ` (did you mean "${guess}"?)` : ''}; axes take config paths (or a variant group name without dots)` };
}

function readAxes(layer: Layer, problems: SpecProblem[]): Axis[] {
  const { source } = layer;
  const axes: Axis[] = [];
  for (const [name, spec] of Object.entries(layer.data.axes as Raw)) {
    if (name === 'seed') {
      problems.push({ where: source.locate(['axes', name], { key: true }), key: `axes.${name}`, message: SEED_AXIS_MESSAGE });
      continue;
    }
    if (Array.isArray(spec)) {
      // A config path with a list of values (the schema has checked each value already).
      axes.push({ names: [name], values: spec.map((v, i) => ({ labels: { [name]: labelOf(v) }, overrides: flattenConfig(setPath({}, name, v)), where: source.locate(['axes', name, i]) })) });
      continue;
    }
    if (name.includes('.') || isConfigPath(name)) {
      const guess = closest(name, CONFIG_PATHS);
      problems.push({
        where: source.locate(['axes', name], { key: true }),
        key: `axes.${name}`,
        message: isConfigPath(name)
          ? `found a mapping; a config path axis takes a list of values, e.g. ${name}: [a, b]`
          : `unknown config path ${show(name)}${guess ? ` (did you mean "${guess}"?)` : ''}; a named-variant group needs a name without dots`,
      });
      continue;
    }
    // Named variants: label -> several config values.
    const values: AxisValue[] = [];
    for (const [label, settings] of Object.entries(spec as Raw)) {
      const overrides = readOverrides(settings as Raw, source, ['axes', name, label], problems);
      values.push({ labels: { [name]: label }, overrides, where: source.locate(['axes', name, label], { key: true }) });
    }
    axes.push({ names: [name], values });
  }
  return axes;
}

/** A mapping of config paths (dotted or nested) to values, each checked against its field's schema. */
function readOverrides(settings: Raw, source: YamlSource, at: string[], problems: SpecProblem[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    const where = source.locate([...at, key], { key: true });
    if (!isConfigPath(key)) {
      const guess = closest(key, CONFIG_PATHS);
      problems.push({ where, key: dotted([...at, key]), message: `unknown config path ${show(key)}${guess ? ` (did you mean "${guess}"?)` : ''}` });
      continue;
    }
    const leaves = isConfigGroup(key) ? flattenConfig(setPath({}, key, value)) : { [key]: value };
    if (isConfigGroup(key) && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      problems.push({ where, key: dotted([...at, key]), message: `found ${show(value)}; ${key} is a group of fields and takes a mapping` });
      continue;
    }
    for (const [path, v] of Object.entries(leaves)) {
      if (!isConfigPath(path)) {
        problems.push({ where, key: dotted([...at, key]), message: `unknown config path ${show(path)}` });
        continue;
      }
      const found = checkFieldValue(path, v, source, [...at, key]);
      problems.push(...found.map((p) => ({ ...p, key: `${dotted([...at, key])} (config ${path})` })));
      out[path] = v;
    }
  }
  return out;
}

function readZip(layer: Layer, axesByName: Map<string, Axis>, problems: SpecProblem[]): Axis[] {
  const { source } = layer;
  const groups = layer.data.zip as Raw[];
  const seen = new Map<string, number>();
  const axes: Axis[] = [];
  groups.forEach((group, g) => {
    const paths = Object.keys(group);
    const lengths = paths.map((p) => (group[p] as unknown[]).length);
    for (const path of paths) {
      const where = source.locate(['zip', g, path], { key: true });
      if (axesByName.has(path)) problems.push({ where, key: `zip[${g}].${path}`, message: `${path} is set both in axes and in zip; keep it in one place` });
      if (seen.has(path)) problems.push({ where, key: `zip[${g}].${path}`, message: `${path} is already in zip group ${seen.get(path)}` });
      seen.set(path, g);
    }
    if (new Set(lengths).size > 1) {
      problems.push({
        where: source.locate(['zip', g]),
        key: `zip[${g}]`,
        message: `lists of a zip group vary together and must have the same length; found ${paths.map((p, i) => `${p}: ${lengths[i]}`).join(', ')}`,
      });
      return;
    }
    const values: AxisValue[] = [];
    for (let i = 0; i < lengths[0]; i++) {
      const labels: Record<string, string> = {};
      let overrides: Record<string, unknown> = {};
      for (const path of paths) {
        const v = (group[path] as unknown[])[i];
        labels[path] = labelOf(v);
        overrides = { ...overrides, ...flattenConfig(setPath({}, path, v)) };
      }
      values.push({ labels, overrides, where: source.locate(['zip', g, paths[0], i]) });
    }
    axes.push({ names: paths, values });
  });
  return axes;
}

/** include: / exclude: entries. Keys are axis names (value or variant label) or, for include, any config path. */
function readCells(layer: Layer, key: 'include' | 'exclude', axes: Axis[], problems: SpecProblem[]): CellPattern[] {
  const { source } = layer;
  const axisNames = new Set(axes.flatMap((a) => a.names));
  const variantGroups = new Map(axes.filter((a) => !isConfigPath(a.names[0])).map((a) => [a.names[0], a]));
  return (layer.data[key] as Raw[]).map((entry, i) => {
    const labels: Record<string, string> = {};
    let overrides: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(entry)) {
      const where = source.locate([key, i, name], { key: true });
      const variants = variantGroups.get(name);
      if (name === 'seed') {
        labels.seed = labelOf(value);
      } else if (variants) {
        const chosen = variants.values.find((v) => v.labels[name] === labelOf(value));
        if (!chosen) {
          problems.push({ where, key: `${key}[${i}].${name}`, message: `found ${show(value)}; allowed: one of the variants ${variants.values.map((v) => show(v.labels[name])).join(', ')}` });
          continue;
        }
        labels[name] = labelOf(value);
        overrides = { ...overrides, ...chosen.overrides };
      } else if (key === 'exclude' && !axisNames.has(name)) {
        problems.push({ where, key: `exclude[${i}].${name}`, message: `${show(name)} is not an axis; exclude matches axis values, axes are: ${[...axisNames].join(', ') || '(none)'}` });
      } else if (!isConfigPath(name)) {
        const guess = closest(name, [...axisNames, ...CONFIG_PATHS]);
        problems.push({ where, key: `${key}[${i}].${name}`, message: `unknown axis or config path ${show(name)}${guess ? ` (did you mean "${guess}"?)` : ''}` });
      } else {
        problems.push(...checkFieldValue(name, value, source, [key, i, name]).map((p) => ({ ...p, key: `${key}[${i}].${name}` })));
        labels[name] = labelOf(value);
        overrides = { ...overrides, ...flattenConfig(setPath({}, name, value)) };
      }
    }
    return { labels, overrides, where: source.locate([key, i]) };
  });
}

function readReport(layer: Layer | null, axes: Axis[], seeds: number[] | null, problems: SpecProblem[]): ReportSpec {
  const raw = (layer?.data.report as Raw | undefined) ?? {};
  const names = axes.flatMap((a) => a.names);
  const known = seeds ? [...names, 'seed'] : names;
  const checkAxis = (field: 'rows' | 'columns'): string | null => {
    const value = raw[field] as string | undefined;
    if (value === undefined) return null;
    if (!known.includes(value)) {
      problems.push({ where: layer!.source.locate(['report', field]), key: `report.${field}`, message: `found ${show(value)}; allowed: one of the axes ${known.map(show).join(', ')}` });
    }
    return value;
  };
  const rows = checkAxis('rows') ?? names[0] ?? null;
  const columns = checkAxis('columns');
  let baseline: Record<string, string> | null = null;
  if (raw.baseline) {
    baseline = {};
    for (const [name, value] of Object.entries(raw.baseline as Raw)) {
      const axis = axes.find((a) => a.names.includes(name));
      const label = labelOf(value);
      if (!axis) {
        problems.push({ where: layer!.source.locate(['report', 'baseline', name], { key: true }), key: `report.baseline.${name}`, message: `${show(name)} is not an axis; axes are: ${names.join(', ')}` });
      } else if (!axis.values.some((v) => v.labels[name] === label)) {
        problems.push({
          where: layer!.source.locate(['report', 'baseline', name]),
          key: `report.baseline.${name}`,
          message: `found ${show(value)}; allowed: one of the axis values ${[...new Set(axis.values.map((v) => v.labels[name]))].join(', ')}`,
        });
      }
      baseline[name] = label;
    }
  }
  return { rows, columns, metrics: (raw.metrics as string[] | undefined) ?? DEFAULT_REPORT_METRICS, baseline, paper: (raw.paper as string | undefined) ?? null };
}

/** A partial config from `--set path=value` flags alone (bench and other commands without a spec), checked as sweep
 * checks them; a SpecError listing every bad flag otherwise. */
export function configFromSetFlags(assignments: readonly string[]): PartialTrainConfig {
  const problems: SpecProblem[] = [];
  let config: Raw = {};
  for (const assignment of assignments) {
    const applied = applySet(assignment, problems);
    if (applied) config = setPath(config, applied.path, applied.value);
  }
  if (problems.length > 0) throw new SpecError(problems);
  return config as PartialTrainConfig;
}

function applySet(assignment: string, problems: SpecProblem[]): { path: string; value: unknown; where: Location } | null {
  const where: Location = { file: '(command line)', line: 0, col: 0 };
  const eq = assignment.indexOf('=');
  const key = `--set ${assignment}`;
  if (eq <= 0) {
    problems.push({ where, key, message: 'expected --set path=value, e.g. --set train.steps=50' });
    return null;
  }
  const path = assignment.slice(0, eq).trim();
  const text = assignment.slice(eq + 1);
  if (!isConfigPath(path) || isConfigGroup(path)) {
    const guess = closest(path, CONFIG_PATHS);
    problems.push({ where, key, message: `unknown config field ${show(path)}${guess ? ` (did you mean "${guess}"?)` : ''}` });
    return null;
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch {
    value = text;
  }
  const source = YamlSource.parse('(command line)', text);
  const found = checkFieldValue(path, value, source, []);
  if (found.length > 0) {
    problems.push(...found.map((p) => ({ where, key: `${key} (config ${path})`, message: p.message })));
    return null;
  }
  return { path, value, where };
}

/** Paths in messages relative to the working directory when inside it. */
function displayPath(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith('..') ? resolve(file) : rel;
}
