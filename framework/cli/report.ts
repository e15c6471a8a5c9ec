/**
 * npm run report -- experiments/ablation-a.yaml     report the experiment named by the spec's `name:`
 * npm run report -- --experiment NAME               the same, by name
 * npm run report -- --all                           every experiment, plus reports/index.html and reports/claims.json
 * Options: --db PATH (default results/results.db), --out DIR (default reports/), --paper FILE (paper numbers).
 * Reads the database only (safe while a sweep writes). Exit 1 with one paragraph on a user error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ReportError } from '../report/errors.js';
import { reportAll, reportExperiment, type ExperimentReport } from '../report/generate.js';
import { openResultsDb } from '../report/load.js';

const USAGE = `usage: npm run report -- <spec.yaml ...> | --experiment NAME | --all [--db results/results.db] [--out reports/] [--paper reports/paper-results.json]`;

function nameFromSpec(file: string): string {
  if (!existsSync(file)) throw new ReportError(`report: spec file ${file} does not exist. ${USAGE}`);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ReportError(`report: cannot parse ${file} as YAML: ${(err as Error).message}`);
  }
  const name = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['name'] : undefined;
  if (typeof name !== 'string' || name === '') throw new ReportError(`report: ${file} has no top-level \`name:\`; pass --experiment NAME instead.`);
  return name;
}

function summary(r: ExperimentReport): string {
  const lines = [`${r.name}: ${join(r.dir, 'index.html')} (${r.files.length} files)`];
  for (const s of r.paperStatements) lines.push(`  ${s}`);
  return lines.join('\n');
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export async function main(argv: string[], io: Io = STDIO): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        experiment: { type: 'string', multiple: true },
        all: { type: 'boolean', default: false },
        db: { type: 'string', default: 'results/results.db' },
        out: { type: 'string', default: 'reports' },
        paper: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.err(`report: ${(err as Error).message}\n${USAGE}\n`);
    return 1;
  }
  const { values, positionals } = args;
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  try {
    const names = [...(values.experiment ?? []), ...positionals.map(nameFromSpec)];
    if (!values.all && names.length === 0) throw new ReportError(`report: name an experiment (a spec file or --experiment NAME) or pass --all. ${USAGE}`);
    const dbPath = values.db!;
    const opts = { dbPath, outDir: resolve(values.out!), ...(values.paper ? { paperResults: resolve(values.paper) } : {}) };
    const db = openResultsDb(dbPath);
    try {
      if (values.all) {
        const { experiments, index, claims, scorecard } = await reportAll(db, opts);
        for (const r of experiments) io.out(`${summary(r)}\n`);
        const count = (v: string): number => scorecard.claims.filter((c) => c.verdict === v).length;
        io.out(`index: ${index}\n`);
        io.out(`claims: ${claims} (${count('agrees')} agree, ${count('disagrees')} disagree, ${count('inconclusive')} inconclusive; baseline converged: ${scorecard.baseline_converged})\n`);
      } else {
        for (const name of names) io.out(`${summary(await reportExperiment(db, name, opts))}\n`);
      }
    } finally {
      db.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof ReportError) {
      io.err(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Run as a program, not imported by a test: from the sources, or as report.mjs of the GPU bundle (scripts/gpu).
const invoked = process.argv[1] ? resolve(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url) || invoked.endsWith(join('cli', 'report.ts')) || invoked.endsWith(join('cli', 'report.js'))) {
  process.exitCode = await main(process.argv.slice(2));
}
