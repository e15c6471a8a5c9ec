/**
 * reports/index.html: the claims scorecard first (the paper's 9 claims against ours, with the verdict rule and
 * whether the baseline converged), then every experiment of the database with its job counts and last update.
 */
import type { JobStatus } from '../store/types.js';
import { JOB_STATUSES } from '../store/types.js';
import { CONVERGENCE } from './baseline.js';
import type { Scorecard } from './claims.js';
import { html, page, type SafeHtml } from './html.js';
import type { ExperimentSummary } from './load.js';

export interface IndexEntry {
  summary: ExperimentSummary;
  /** Folder of the experiment's report, relative to the index page. */
  slug: string;
  /** Verdicts against the paper, one line per series ('' when the spec names no paper table). */
  verdicts: string[];
}

function baselineHtml(card: Scorecard): SafeHtml {
  const b = card.baseline;
  const [lo, hi] = CONVERGENCE.top1Range;
  const criteria = `the last ${CONVERGENCE.tailFraction * 100}% of training adds under ${CONVERGENCE.maxTailGainPoints} point of held-out zero-shot top-1, top-1 between ${lo}% and ${hi}%, top-5 under ${CONVERGENCE.maxTop5}%`;
  const measured = b.experiment
    ? `Read from ${b.experiment} (${b.selection}; ${b.seeds} seed${b.seeds === 1 ? '' : 's'}): last ${CONVERGENCE.tailFraction * 100}% adds ${b.tail_gain === null ? '—' : `${b.tail_gain.toFixed(2)} points`}, top-1 ${b.top1 === null ? '—' : `${b.top1.toFixed(1)}%`}, top-5 ${b.top5 === null ? '—' : `${b.top5.toFixed(1)}%`}.`
    : '';
  return html`<p><b>Baseline converged: <span class="verdict ${b.converged ? 'agrees' : 'disagrees'}">${b.converged ? 'yes' : 'no'}</span></b> (criteria: ${criteria}). ${measured}${
    b.problems.length ? html` Not met: ${b.problems.join('; ')}.` : ''
  }</p>`;
}

function scorecardHtml(card: Scorecard): SafeHtml {
  const count = (v: string): number => card.claims.filter((c) => c.verdict === v).length;
  return html`<h2 id="claims">Claims scorecard</h2>
<p>${count('agrees')} of ${card.claims.length} claims agree with the paper, ${count('disagrees')} disagree, ${count('inconclusive')} inconclusive. Also in <a href="claims.json">claims.json</a>.</p>
${baselineHtml(card)}
<p class="notes">Rule: ${card.rule}</p>
<div class="scroll"><table class="claims"><colgroup><col style="width: 34%"><col style="width: 19%"><col style="width: 23%"><col style="width: 9%"><col style="width: 5%"><col style="width: 10%"></colgroup><thead><tr><th>claim</th><th>paper</th><th>ours</th><th>verdict</th><th>seeds</th><th>effect ± spread</th></tr></thead><tbody>
${card.claims.map(
  (c) => html`<tr><th class="left"><b>${c.id}</b> ${c.claim}</th><td class="left">${c.paper}</td><td class="left">${c.ours}${c.notes.map((n) => html`<br><span class="note">${n}</span>`)}</td><td><span class="verdict ${c.verdict === 'inconclusive' ? 'cannot' : c.verdict}">${c.verdict}</span></td><td>${c.seeds}</td><td>${
    c.effect === null ? '—' : `${c.effect >= 0 ? '+' : ''}${c.effect.toFixed(2)}${c.spread === null ? '' : ` ± ${c.spread.toFixed(2)}`}`
  }</td></tr>`,
)}
</tbody></table></div>`;
}

export function indexPage(entries: readonly IndexEntry[], card: Scorecard, generatedAt: string, dbPath: string): string {
  const total = (s: JobStatus): number => entries.reduce((a, e) => a + e.summary.counts[s], 0);
  const body = html`<h1>FLIP sweep reports</h1>
<p class="meta">${entries.length} experiments from <code>${dbPath}</code>, generated ${generatedAt}.</p>
${scorecardHtml(card)}
<h2 id="experiments">Experiments</h2>
<div class="scroll"><table class="experiments"><thead><tr><th>experiment</th><th>description</th><th>jobs</th>${JOB_STATUSES.map((s) => html`<th>${s}</th>`)}<th>last update</th><th>paper</th></tr></thead><tbody>
${entries.map(
  (e) => html`<tr><th><a href="${e.slug}/index.html">${e.summary.name}</a></th><td class="left">${e.summary.description}</td><td>${e.summary.total}</td>${JOB_STATUSES.map(
    (s) => html`<td class="status-${s}" data-status="${s}">${e.summary.counts[s]}</td>`,
  )}<td>${e.summary.lastUpdate}</td><td class="left">${e.verdicts.map((v, i) => html`${i ? html`<br>` : ''}${v}`)}</td></tr>`,
)}
<tr><th>all</th><td></td><td>${entries.reduce((a, e) => a + e.summary.total, 0)}</td>${JOB_STATUSES.map((s) => html`<td>${total(s)}</td>`)}<td></td><td></td></tr>
</tbody></table></div>`;
  return page('FLIP sweep reports', body);
}
