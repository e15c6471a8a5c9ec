/** reports/index.html: every experiment of the database with its job counts and last update. */
import type { JobStatus } from '../store/types.js';
import { JOB_STATUSES } from '../store/types.js';
import { html, page } from './html.js';
import type { ExperimentSummary } from './load.js';

export interface IndexEntry {
  summary: ExperimentSummary;
  /** Folder of the experiment's report, relative to the index page. */
  slug: string;
  /** Verdicts against the paper, one line per series ('' when the spec names no paper table). */
  verdicts: string[];
}

export function indexPage(entries: readonly IndexEntry[], generatedAt: string, dbPath: string): string {
  const total = (s: JobStatus): number => entries.reduce((a, e) => a + e.summary.counts[s], 0);
  const body = html`<h1>FLIP sweep reports</h1>
<p class="meta">${entries.length} experiments from <code>${dbPath}</code>, generated ${generatedAt}.</p>
<table><thead><tr><th>experiment</th><th>description</th><th>jobs</th>${JOB_STATUSES.map((s) => html`<th>${s}</th>`)}<th>last update</th><th>paper</th></tr></thead><tbody>
${entries.map(
  (e) => html`<tr><th><a href="${e.slug}/index.html">${e.summary.name}</a></th><td class="left">${e.summary.description}</td><td>${e.summary.total}</td>${JOB_STATUSES.map(
    (s) => html`<td class="status-${s}" data-status="${s}">${e.summary.counts[s]}</td>`,
  )}<td>${e.summary.lastUpdate}</td><td class="left">${e.verdicts.map((v, i) => html`${i ? html`<br>` : ''}${v}`)}</td></tr>`,
)}
<tr><th>all</th><td></td><td>${entries.reduce((a, e) => a + e.summary.total, 0)}</td>${JOB_STATUSES.map((s) => html`<td>${total(s)}</td>`)}<td></td><td></td></tr>
</tbody></table>`;
  return page('FLIP sweep reports', body);
}
