/**
 * Writes reports/<experiment>/ (index.html, table.md, table.tex, table.csv, jobs.csv, curves.csv, figure1.csv, PNG
 * plots) and, for --all, reports/index.html and reports/claims.json. Reads the database only.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveLayout, type Layout } from './axes.js';
import { buildCharts, type ChartFile } from './charts.js';
import { scorecard, type Scorecard } from './claims.js';
import { ReportError } from './errors.js';
import { experimentPage } from './experiment-page.js';
import { figure1Csv, figure1Panels } from './figure1.js';
import { indexPage, type IndexEntry } from './index-page.js';
import { listExperiments, loadExperiment, type ExperimentData } from './load.js';
import { paperLines, paperNotes, seriesTitle } from './paper-html.js';
import { addPaperColumns, comparePaper, loadPaperResults, type PaperComparison, type PaperResults } from './paper.js';
import { assignSlugs } from './slug.js';
import type { Database } from './sqlite.js';
import { TableBuilder } from './table.js';
import { csvLine, toCsv, toLatex, toMarkdown } from './table-text.js';

/**
 * reports/paper-results.json of this repository. The GPU bundle (scripts/gpu/prepare.sh) puts this module's code in a
 * file at its top level and ships the JSON beside it under reports/, so that place is tried first; from the sources it
 * does not exist (framework/report/reports/).
 */
export const DEFAULT_PAPER_RESULTS = ['./reports/paper-results.json', '../../reports/paper-results.json']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .reduce((found, candidate) => (existsSync(found) ? found : candidate));

export interface ReportOptions {
  /** Shown on the pages; the database itself is passed open. */
  dbPath: string;
  outDir: string;
  /** reports/paper-results.json of this repository unless set. */
  paperResults?: string;
  /** Fixed time for reproducible output in tests. */
  now?: Date;
}

export interface ExperimentReport {
  name: string;
  slug: string;
  dir: string;
  files: string[];
  /** One line per paper series: 'agrees: ...' / 'disagrees: ...'. */
  paperStatements: string[];
  paper: PaperComparison | null;
  /** What the report was made from (the claims scorecard reads it). */
  data: ExperimentData;
  seconds: { load: number; table: number; charts: number; write: number };
}

function jobsCsv(data: ExperimentData, layout: Layout): string {
  const names = [...new Set(data.jobs.flatMap((j) => [...j.results.keys()]))].sort();
  const axes = layout.axes.map((a) => a.name);
  const lines = [csvLine(['job_id', ...axes, 'status', 'attempts', 'backend', 'device', 'error', ...names])];
  for (const j of data.jobs) {
    lines.push(csvLine([j.id, ...axes.map((a) => j.labels[a] ?? ''), j.status, j.attempts, j.backend, j.device, j.error, ...names.map((n) => j.results.get(n) ?? null)]));
  }
  return lines.join('\n') + '\n';
}

function curvesCsv(data: ExperimentData): string {
  return `job_id,name,step,value,elapsed_seconds\n${data.curvesCsv}${data.curvesCsv ? '\n' : ''}`;
}

/** Removes what an earlier run generated (plots of jobs that may no longer exist); leaves other files alone. */
function clearGenerated(dir: string): void {
  if (!existsSync(dir)) return;
  rmSync(join(dir, 'jobs'), { recursive: true, force: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.png')) rmSync(join(dir, f), { force: true });
}

function paperFor(layout: Layout, builder: TableBuilder, data: ExperimentData, papers: PaperResults | null, path: string): { cmp: PaperComparison | null; problem: string | null } {
  const key = layout.report.paper;
  if (!key) return { cmp: null, problem: null };
  if (!papers) return { cmp: null, problem: `report.paper is ${key}, but ${path} could not be read.` };
  const table = papers[key];
  if (!table) return { cmp: null, problem: `report.paper is "${key}", which ${path} does not hold (it has: ${Object.keys(papers).join(', ')}).` };
  return { cmp: comparePaper(key, table, layout, builder, data.jobs), problem: null };
}

function readPapers(path: string): PaperResults | null {
  try {
    return loadPaperResults(path);
  } catch {
    return null;
  }
}

export async function reportExperiment(db: Database, name: string, opts: ReportOptions, slugs?: Map<number, string>, papers?: PaperResults | null): Promise<ExperimentReport> {
  const t0 = performance.now();
  const data = loadExperiment(db, name);
  const t1 = performance.now();
  const slug = (slugs ?? assignSlugs(listExperiments(db))).get(data.row.id)!;
  const dir = join(opts.outDir, slug);
  const layout = resolveLayout(data);
  const builder = new TableBuilder(data, layout);
  const table = builder.build();
  const paperPath = opts.paperResults ?? DEFAULT_PAPER_RESULTS;
  const { cmp, problem } = paperFor(layout, builder, data, papers === undefined ? readPapers(paperPath) : papers, paperPath);
  if (cmp) addPaperColumns(table, cmp);
  const t2 = performance.now();
  const panels = figure1Panels(data, layout);
  const charts: ChartFile[] = buildCharts(data, layout, panels);
  const t3 = performance.now();

  clearGenerated(dir);
  mkdirSync(join(dir, 'jobs'), { recursive: true });
  const description = data.row.description.trim().replace(/\s+/g, ' ');
  const title = description ? `${data.row.name}: ${description}` : data.row.name;
  const statements = cmp ? paperLines(cmp) : [];
  const paperMd = cmp ? [...paperNotes(cmp), ...statements].map((s) => `- ${s}`).join('\n') : '';
  const md = toMarkdown(table, title) + (paperMd ? `\n## Paper comparison\n\n${paperMd}\n` : '');
  const files = ['table.md', 'table.tex', 'table.csv', 'jobs.csv', 'curves.csv', ...(panels.length ? ['figure1.csv'] : [])];
  writeFileSync(join(dir, 'table.md'), md);
  writeFileSync(join(dir, 'table.tex'), toLatex(table, title));
  writeFileSync(join(dir, 'table.csv'), toCsv(table));
  writeFileSync(join(dir, 'jobs.csv'), jobsCsv(data, layout));
  writeFileSync(join(dir, 'curves.csv'), curvesCsv(data));
  if (panels.length) writeFileSync(join(dir, 'figure1.csv'), figure1Csv(panels, layout.groupAxes));
  else rmSync(join(dir, 'figure1.csv'), { force: true });
  const generatedAt = (opts.now ?? new Date()).toISOString();
  writeFileSync(
    join(dir, 'index.html'),
    experimentPage({ data, layout, table, paper: cmp, paperProblem: problem, charts, files, generatedAt, dbPath: opts.dbPath }),
  );
  const pngs = await Promise.all(charts.map((c) => c.png));
  charts.forEach((c, i) => writeFileSync(join(dir, c.file), pngs[i]!));
  const t4 = performance.now();
  return {
    name: data.row.name,
    slug,
    dir,
    files: ['index.html', ...files, ...charts.map((c) => c.file)],
    paperStatements: statements,
    paper: cmp,
    data,
    seconds: { load: (t1 - t0) / 1000, table: (t2 - t1) / 1000, charts: (t3 - t2) / 1000, write: (t4 - t3) / 1000 },
  };
}

export async function reportAll(db: Database, opts: ReportOptions): Promise<{ experiments: ExperimentReport[]; index: string; claims: string; scorecard: Scorecard }> {
  const summaries = listExperiments(db);
  const slugs = assignSlugs(summaries);
  const paperPath = opts.paperResults ?? DEFAULT_PAPER_RESULTS;
  const papers = readPapers(paperPath);
  if (!papers) {
    let why = '';
    try {
      loadPaperResults(paperPath);
    } catch (err) {
      why = (err as Error).message;
    }
    throw new ReportError(`report: --all scores the paper's claims (claims.json) from ${paperPath}, which could not be read: ${why}. Pass --paper FILE.`);
  }
  const experiments: ExperimentReport[] = [];
  const entries: IndexEntry[] = [];
  for (const s of summaries) {
    const r = await reportExperiment(db, s.name, opts, slugs, papers);
    experiments.push(r);
    entries.push({ summary: s, slug: r.slug, verdicts: r.paper ? r.paper.comparisons.map((c) => `${seriesTitle(c)}: ${c.verdict}`) : [] });
  }
  const byName = new Map(experiments.map((r) => [r.name, r.data]));
  const card = scorecard((name) => byName.get(name) ?? null, papers, paperPath);
  mkdirSync(opts.outDir, { recursive: true });
  const claims = join(opts.outDir, 'claims.json');
  writeFileSync(claims, JSON.stringify(card, null, 2) + '\n');
  const index = join(opts.outDir, 'index.html');
  writeFileSync(index, indexPage(entries, card, (opts.now ?? new Date()).toISOString(), opts.dbPath));
  return { experiments, index, claims, scorecard: card };
}
