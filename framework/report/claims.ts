/**
 * The claims scorecard (reports/claims.json and the top of reports/index.html): the paper's 9 claims, each as one
 * difference of zero-shot top-1 between two cells of one of our experiments, against the same difference in the
 * paper (reports/paper-results.json).
 *
 * Verdict rule (VERDICT_RULE): inconclusive when either side has no finished result or fewer than MIN_SEEDS seeds
 * (pairs for paired claims); agrees when our difference has the paper's sign and exceeds its standard error;
 * disagrees otherwise. The standard error is over seeds: sqrt(s1²/n1 + s2²/n2) for two independent cells, s_d/√n
 * for paired claims (two measurements of the same trained model, paired by seed).
 */
import { axisLabels, cellKey, describeLabels, resolveLayout } from './axes.js';
import { checkBaseline, type BaselineCheck } from './baseline.js';
import { toDisplay, unitOf } from './columns.js';
import { ReportError } from './errors.js';
import type { ExperimentData, JobData } from './load.js';
import type { PaperResults } from './paper.js';
import { summarize, type Stat } from './stats.js';

export const MIN_SEEDS = 3;
export const VERDICT_RULE =
  `Each claim is one difference of zero-shot top-1 (percentage points, treatment − control) between two cells. ` +
  `agrees: our difference has the paper's sign and is larger than its standard error over seeds ` +
  `(sqrt(s1²/n1 + s2²/n2); s_d/√n for paired claims, which compare two measurements of the same trained models, paired by seed). ` +
  `disagrees: the sign differs, or the difference is within one standard error. ` +
  `inconclusive: a side has no finished result or fewer than ${MIN_SEEDS} seeds.`;

/** An axis label, or the first / last label of the axis in declaration order (our batch sizes are not the paper's). */
export type Pick = string | { first: true } | { last: true };

interface Side {
  labels: Record<string, Pick>;
  metric: string;
  /** Row key of the paper table. */
  paperRow: string;
}

export interface ClaimDef {
  id: string;
  claim: string;
  experiment: string;
  /** Labels both sides share (the block or column the claim is read in). */
  where: Record<string, Pick>;
  treatment: Side;
  control: Side;
  paired: boolean;
  /** Key of reports/paper-results.json, and the column of its zero-shot top-1 series when the table has several. */
  paper: { table: string; column?: string; note?: string };
}

const TOP1 = 'zero_shot_top1';
const side = (labels: Record<string, Pick>, paperRow: string, metric = TOP1): Side => ({ labels, metric, paperRow });

export const CLAIMS: ClaimDef[] = [
  {
    id: '1a', claim: 'Mask ratio at equal time: 50% image masking beats no masking for the same wall-clock training time',
    experiment: 'ablation-a', where: { budget: 'time' },
    treatment: side({ 'mask.image_ratio': '0.5' }, '0.5'), control: side({ 'mask.image_ratio': '0' }, '0'), paired: false,
    paper: { table: 'table1a', note: 'paper: Table 1(a), the 50% run in 0.50x the time' },
  },
  {
    id: '1b', claim: 'Batch size: with 50% masking, the largest batch beats the smallest',
    experiment: 'ablation-b', where: { 'mask.image_ratio': '0.5' },
    treatment: side({ 'train.batch_size': { last: true } }, '65536'), control: side({ 'train.batch_size': { first: true } }, '16384'), paired: false,
    paper: { table: 'table1b', column: '0.5', note: 'paper: 64k vs 16k' },
  },
  {
    id: '1c', claim: 'Text masking: dropping 50% of the text tokens at random lowers zero-shot accuracy',
    experiment: 'ablation-c', where: {},
    treatment: side({ text_mask: 'random' }, 'random'), control: side({ text_mask: 'none' }, 'none'), paired: false,
    paper: { table: 'table1c' },
  },
  {
    id: '1d', claim: 'Inference: a model trained with 50% masking scores higher evaluated unmasked than masked',
    experiment: 'ablation-d', where: { 'mask.image_ratio': '0.5' },
    treatment: side({ 'eval.inference': 'unmasked' }, 'unmasked'), control: side({ 'eval.inference': 'masked' }, 'masked'), paired: true,
    paper: { table: 'table1d', column: '0.5' },
  },
  {
    id: '1e', claim: 'Unmasked tuning: a short phase with mask 0 after 50%-masked pre-training raises zero-shot accuracy',
    experiment: 'ablation-e', where: { 'mask.image_ratio': '0.5' },
    treatment: side({}, 'after', TOP1), control: side({}, 'before', `pretune_${TOP1}`), paired: true,
    paper: { table: 'table1e', column: '0.5' },
  },
  {
    id: '1f', claim: 'MAE loss: adding the pixel reconstruction loss (50% masking) does not help (slightly lower in the paper)',
    experiment: 'ablation-f', where: { 'mask.image_ratio': '0.5' },
    treatment: side({ 'loss.reconstruction_weight': '1' }, '1'), control: side({ 'loss.reconstruction_weight': '0' }, '0'), paired: false,
    paper: { table: 'table1f', column: '0.5' },
  },
  {
    id: 'model', claim: 'Table 8, model: a larger model raises zero-shot accuracy',
    experiment: 'scaling-model', where: {},
    treatment: side({ scale: 'model' }, 'model'), control: side({ scale: 'baseline' }, 'baseline'), paired: false,
    paper: { table: 'table8' },
  },
  {
    id: 'data', claim: 'Table 8, data: more distinct training data raises zero-shot accuracy',
    experiment: 'scaling-data', where: {},
    treatment: side({ scale: 'data' }, 'data'), control: side({ scale: 'baseline' }, 'baseline'), paired: false,
    paper: { table: 'table8' },
  },
  {
    id: 'schedule', claim: 'Table 8, schedule: twice the samples seen alone barely changes zero-shot accuracy (slightly lower in the paper)',
    experiment: 'scaling-schedule', where: {},
    treatment: side({ scale: 'schedule' }, 'schedule'), control: side({ scale: 'baseline' }, 'baseline'), paired: false,
    paper: { table: 'table8' },
  },
];

export type ClaimVerdict = 'agrees' | 'disagrees' | 'inconclusive';

/** One line of claims.json. */
export interface ClaimResult {
  id: string;
  /** The claim and exactly what is compared. */
  claim: string;
  /** The paper's two numbers and their difference. */
  paper: string;
  /** Ours, or why there is nothing to compare. */
  ours: string;
  verdict: ClaimVerdict;
  /** Seeds behind the smaller side (pairs for paired claims). */
  seeds: number;
  /** Our difference, treatment − control, in percentage points; null when inconclusive for want of data. */
  effect: number | null;
  /** Its standard error over seeds; null when it cannot be computed. */
  spread: number | null;
  /**
   * How the two sides' training differed, read from their results (optimiser steps, pairs seen): facts that explain
   * many disagreements (a bigger batch at equal epochs takes fewer steps). Empty when both trained alike.
   */
  notes: string[];
}

export interface Scorecard {
  baseline_converged: boolean;
  baseline: BaselineCheck;
  rule: string;
  claims: ClaimResult[];
}

function pickText(p: Pick): string {
  return typeof p === 'string' ? p : 'first' in p ? '(first)' : '(last)';
}

function sideText(def: ClaimDef, s: Side): string {
  const labels = Object.entries(s.labels).map(([a, p]) => `${a} = ${pickText(p)}`);
  return [...labels, ...(s.metric !== TOP1 ? [s.metric] : [])].join(', ') || s.metric;
}

/** 'ablation-b, mask.image_ratio = 0.5: train.batch_size = (last) − train.batch_size = (first)'. */
export function comparisonText(def: ClaimDef): string {
  const where = Object.entries(def.where).map(([a, p]) => `${a} = ${pickText(p)}`).join(', ');
  return `${def.experiment}${where ? `, ${where}` : ''}: ${sideText(def, def.treatment)} − ${sideText(def, def.control)}${def.paired ? ', paired by seed' : ''}`;
}

function paperValue(papers: PaperResults, def: ClaimDef, row: string, source: string): number {
  const table = papers[def.paper.table];
  if (!table) throw new ReportError(`report: claim ${def.id} needs "${def.paper.table}" in ${source}, which has: ${Object.keys(papers).join(', ') || 'nothing'}.`);
  const series = table.series.find((s) => s.kind === 'value' && s.metric === TOP1 && s.column === def.paper.column);
  const v = series?.values[row];
  if (typeof v !== 'number') {
    throw new ReportError(
      `report: claim ${def.id} needs the ${TOP1} value of row "${row}"${def.paper.column ? ` in column "${def.paper.column}"` : ''} of ${def.paper.table} in ${source}; ` +
        `the table's value series are: ${table.series.filter((s) => s.kind === 'value').map((s) => `${s.metric}${s.column ? `@${s.column}` : ''} (${Object.keys(s.values).join(', ')})`).join('; ')}.`,
    );
  }
  return v;
}

type Resolved = { labels: Record<string, string> } | { problem: string };

function resolvePicks(data: ExperimentData, picks: Record<string, Pick>): Resolved {
  const layout = resolveLayout(data);
  const labels: Record<string, string> = {};
  for (const [axis, p] of Object.entries(picks)) {
    const known = axisLabels(layout, axis);
    if (!layout.cellAxes.includes(axis)) return { problem: `${data.row.name} has no axis ${axis} (axes: ${layout.cellAxes.join(', ') || 'none'})` };
    const label = typeof p === 'string' ? p : 'first' in p ? known[0] : known[known.length - 1];
    if (label === undefined || !known.includes(label)) return { problem: `${data.row.name} has no ${axis} = ${pickText(p)} (labels: ${known.join(', ')})` };
    labels[axis] = label;
  }
  return { labels };
}

/** The done jobs at the labels with a finite value of the metric, by seed; a problem when they span several cells. */
function valuesAt(data: ExperimentData, labels: Record<string, string>, metric: string): Map<number, number> | { problem: string } {
  const layout = resolveLayout(data);
  const jobs: JobData[] = data.jobs.filter((j) => Object.entries(labels).every(([a, l]) => j.labels[a] === l));
  const cells = new Set(jobs.map((j) => cellKey(layout, j.labels)));
  if (cells.size > 1) return { problem: `${describeLabels(labels)} spans ${cells.size} cells of ${data.row.name}; the claim must name the other axes` };
  const out = new Map<number, number>();
  const unit = unitOf(metric);
  for (const j of jobs) {
    const v = j.status === 'done' ? j.results.get(metric) : undefined;
    if (typeof v === 'number' && Number.isFinite(v)) out.set(j.seed, toDisplay(unit, v));
  }
  return out;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
const statText = (s: Stat): string => `${s.mean.toFixed(1)}${s.std !== null ? ` ± ${s.std.toFixed(1)}` : ''} (n=${s.n})`;

export function judgeClaim(def: ClaimDef, experiment: (name: string) => ExperimentData | null, papers: PaperResults, paperSource: string): ClaimResult {
  const pt = paperValue(papers, def, def.treatment.paperRow, paperSource);
  const pc = paperValue(papers, def, def.control.paperRow, paperSource);
  const paperEffect = pt - pc;
  const claim = `${def.claim} (${comparisonText(def)})`;
  const paper = `${pt.toFixed(1)} vs ${pc.toFixed(1)} (${signed(paperEffect)})${def.paper.note ? `; ${def.paper.note}` : ''}`;
  const base = { id: def.id, claim, paper };
  const inconclusive = (ours: string, seeds = 0): ClaimResult => ({ ...base, ours, verdict: 'inconclusive', seeds, effect: null, spread: null, notes: [] });

  const data = experiment(def.experiment);
  if (!data) return inconclusive(`no experiment ${def.experiment} in the database`);
  const sides = [def.treatment, def.control].map((s) => {
    const r = resolvePicks(data, { ...def.where, ...s.labels });
    if ('problem' in r) return r;
    const values = valuesAt(data, r.labels, s.metric);
    return 'problem' in values ? values : { labels: r.labels, values };
  });
  for (const s of sides) if ('problem' in s) return inconclusive(s.problem);
  const [t, c] = sides as { labels: Record<string, string>; values: Map<number, number> }[];

  let effect: number, spread: number | null, seeds: number, ours: string;
  if (def.paired) {
    const diffs = [...t!.values].flatMap(([seed, v]) => (c!.values.has(seed) ? [v - c!.values.get(seed)!] : []));
    seeds = diffs.length;
    const d = summarize(diffs);
    const ts = summarize([...t!.values.values()]), cs = summarize([...c!.values.values()]);
    if (!d || !ts || !cs) return inconclusive(`no seed with both sides finished (${t!.values.size} and ${c!.values.size} finished)`, seeds);
    effect = d.mean;
    spread = d.std === null ? null : d.std / Math.sqrt(d.n);
    ours = `${statText(ts)} vs ${statText(cs)}, ${seeds} pairs`;
  } else {
    const ts = summarize([...t!.values.values()]), cs = summarize([...c!.values.values()]);
    seeds = Math.min(ts?.n ?? 0, cs?.n ?? 0);
    if (!ts || !cs) return inconclusive(`no finished result at ${describeLabels(!ts ? t!.labels : c!.labels)}`, seeds);
    effect = ts.mean - cs.mean;
    spread = ts.std === null || cs.std === null ? null : Math.sqrt((ts.std * ts.std) / ts.n + (cs.std * cs.std) / cs.n);
    ours = `${statText(ts)} vs ${statText(cs)}`;
  }
  ours += ` (${signed(effect)})`;
  const notes = trainingNotes(data, t!.labels, c!.labels);
  if (seeds < MIN_SEEDS || spread === null) {
    return { ...base, ours: `${ours}; ${seeds} seed${seeds === 1 ? '' : 's'}, ${MIN_SEEDS} needed`, verdict: 'inconclusive', seeds, effect: round(effect), spread: spread === null ? null : round(spread), notes };
  }
  const agrees = Math.sign(effect) === Math.sign(paperEffect) && Math.abs(effect) > spread;
  return { ...base, ours, verdict: agrees ? 'agrees' : 'disagrees', seeds, effect: round(effect), spread: round(spread), notes };
}

/** A side's training differs from the other's when their means are more than 10% apart. */
const TRAINING_TOLERANCE = 0.1;
const TRAINING_QUANTITIES: [metric: string, verb: string, what: string][] = [
  ['steps', 'took', 'optimiser steps'],
  ['samples_seen', 'saw', 'pairs'],
];

/** 'the treatment took 128 optimiser steps, the control 512 (0.25x)' for each quantity the two sides differ in. */
function trainingNotes(data: ExperimentData, treatment: Record<string, string>, control: Record<string, string>): string[] {
  const mean = (labels: Record<string, string>, metric: string): number | null => {
    const v = valuesAt(data, labels, metric);
    return 'problem' in v ? null : (summarize([...v.values()])?.mean ?? null);
  };
  return TRAINING_QUANTITIES.flatMap(([metric, verb, what]) => {
    const t = mean(treatment, metric), c = mean(control, metric);
    if (t === null || c === null || c <= 0 || Math.abs(t / c - 1) <= TRAINING_TOLERANCE) return [];
    return [`the treatment ${verb} ${Math.round(t)} ${what}, the control ${Math.round(c)} (${(t / c).toFixed(2)}x)`];
  });
}

export function scorecard(experiment: (name: string) => ExperimentData | null, papers: PaperResults, paperSource: string): Scorecard {
  const baseline = checkBaseline(experiment);
  return { baseline_converged: baseline.converged, baseline, rule: VERDICT_RULE, claims: CLAIMS.map((d) => judgeClaim(d, experiment, papers, paperSource)) };
}
