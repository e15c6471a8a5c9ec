/**
 * JSON Schema of an experiment spec file. framework/spec/experiment.schema.json is this object written out
 * (`npm run schema`); editors use that file through `# yaml-language-server: $schema=../framework/spec/experiment.schema.json`.
 */
import { CONFIG_SCHEMA, configPaths } from './config-schema.js';

type Schema = Record<string, unknown>;

/** An axis over a config path: a non-empty list of values for that field. */
function axisSchemas(): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const path of configPaths()) {
    if (path === 'seed') continue; // seeds have their own key
    // A reference into definitions/config keeps the file small and the two in step.
    const pointer = '#/definitions/config/' + path.split('.').map((p) => `properties/${p}`).join('/');
    out[path] = { type: 'array', minItems: 1, items: { $ref: pointer }, description: `Values of ${path}, one job per value.` };
  }
  return out;
}

const variantGroup: Schema = {
  type: 'object',
  minProperties: 1,
  description:
    'Named variants: a row label mapped to several config values, written as config paths, e.g. {random: {mask.text_ratio: 0.5, mask.text_strategy: random}}; an empty mapping {} is the base as it is.',
  // An empty variant names the base itself (e.g. budget: {epochs: {}, time: {...}}), so a spec need not repeat a base
  // value (and keep it in step) just to give the base's row a label.
  additionalProperties: { type: 'object' },
};

const cellList = (description: string): Schema => ({
  type: 'array',
  minItems: 1,
  description,
  items: { type: 'object', minProperties: 1 },
});

export const SPEC_SCHEMA: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://flip-sweep.local/experiment.schema.json',
  title: 'FLIP sweep experiment spec',
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      maxLength: 100,
      description: 'Experiment name: the key in the results database and the report folder name (letters, digits, . _ -).',
    },
    description: { type: 'string', description: 'What this experiment reproduces and which row is the default.' },
    extends: { type: 'string', minLength: 1, description: 'Another spec file (relative to this one) whose fields this one overrides.' },
    base: { $ref: '#/definitions/config' },
    axes: {
      type: 'object',
      minProperties: 1,
      description: 'Axes expanded as a product: a config path with a list of values, or a group of named variants.',
      properties: axisSchemas(),
      additionalProperties: variantGroup,
    },
    zip: {
      type: 'array',
      minItems: 1,
      description: 'Groups of config paths whose value lists vary together (same length): the i-th values form one cell.',
      items: { type: 'object', minProperties: 1, properties: axisSchemas(), additionalProperties: false },
    },
    include: cellList('Extra cells: each maps axis names or config paths to one value (or variant label); unset fields come from base.'),
    exclude: cellList('Cells to drop: a cell is dropped when all of the given axis values match.'),
    seeds: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'integer', minimum: 0 },
      description: 'Seeds: every cell runs once per seed (sets config seed).',
    },
    run: {
      type: 'object',
      additionalProperties: false,
      description: 'How the sweep runs; command-line flags override these.',
      properties: {
        executor: { enum: ['local', 'bullmq', 'slurm'], description: 'Where jobs run (default local).' },
        concurrency: { type: 'integer', minimum: 1, description: 'Jobs at once (local; default one per CPU core).' },
        retries: { type: 'integer', minimum: 0, description: 'Extra attempts of a failed job within the sweep (default 1).' },
        job_timeout_s: { type: 'integer', minimum: 1, description: 'A job running longer is stopped and failed.' },
        redis: { type: 'string', pattern: '^rediss?://', description: 'bullmq: the Redis server URL.' },
        gpus: { type: 'array', minItems: 1, uniqueItems: true, items: { type: ['integer', 'string'] }, description: 'local: GPU ids, one job per GPU at a time.' },
        slurm: {
          type: 'object',
          additionalProperties: false,
          description: 'slurm: sbatch settings.',
          properties: {
            partition: { type: 'string' },
            time: { type: 'string', description: 'Time limit per task, e.g. 01:00:00.' },
            cpus: { type: 'integer', minimum: 1 },
            gpus: { type: 'integer', minimum: 0 },
            mem: { type: 'string', description: 'Memory per task, e.g. 8G.' },
            sbatch_args: { type: 'array', items: { type: 'string' }, description: 'Extra sbatch options.' },
          },
        },
      },
    },
    report: {
      type: 'object',
      additionalProperties: false,
      description: 'How reports show this experiment.',
      properties: {
        rows: { type: 'string', description: 'Axis shown as table rows (default: the first axis).' },
        columns: { type: 'string', description: 'A second axis shown as columns, making a grid.' },
        metrics: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'Result names shown as columns.' },
        baseline: {
          type: 'object',
          additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
          description: 'Axis values of the default (baseline) row: shaded, and the reference for relative time and FLOPs.',
        },
        paper: { type: 'string', description: "Key of the paper's table in reports/paper-results.json, e.g. table1a." },
      },
    },
  },
  definitions: { config: CONFIG_SCHEMA },
};
