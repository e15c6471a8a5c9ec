/** The paper comparison section of an experiment page. */
import { describeLabels } from './axes.js';
import { formatNumber, formatStat } from './format.js';
import { html, type SafeHtml } from './html.js';
import type { PaperComparison, SeriesComparison } from './paper.js';

function oursText(s: SeriesComparison, i: number): string {
  const p = s.points[i]!;
  if (!p.ourLabels) return 'not in our sweep';
  if (!p.ours) return 'no finished result';
  const { mean, std, n } = p.ours;
  return `${formatStat(s.unit, mean, std)} (n=${n})`;
}

function verdictClass(v: SeriesComparison['verdict']): string {
  return v === 'cannot compare' ? 'cannot' : v;
}

export function seriesTitle(s: SeriesComparison): string {
  const group = Object.keys(s.group).length ? ` [ours: ${describeLabels(s.group)}]` : '';
  return `${s.series.name}${group}`;
}

export function paperHtml(cmp: PaperComparison): SafeHtml {
  const t = cmp.table;
  return html`<h2 id="paper">Paper comparison: ${t.title}</h2>
<p class="meta">${t.setting ?? ''} — key <code>${cmp.key}</code> of reports/paper-results.json. Directions only: the paper trained ViT-L/16 on LAION-400M; our absolute numbers are not comparable, the ordering of rows is.</p>
${cmp.notes.length ? html`<ul class="notes">${cmp.notes.map((n) => html`<li>${n}</li>`)}</ul>` : ''}
${cmp.comparisons.map(
  (s) => html`<h3>${seriesTitle(s)}</h3>
<p><span class="verdict ${verdictClass(s.verdict)}">${s.verdict}</span> ${s.statement}</p>
<div class="scroll"><table><thead><tr><th>paper row</th><th>our cell</th><th>paper</th><th>ours</th></tr></thead><tbody>
${s.points.map(
  (p, i) => html`<tr${p.rowKey === t.baseline ? html` class="baseline"` : ''}><th>${p.paperLabel}</th><td class="left">${p.ourLabels ? describeLabels(p.ourLabels) : '—'}</td><td>${formatNumber(s.unit, p.paper)}</td><td>${oursText(s, i)}</td></tr>`,
)}
</tbody></table></div>`,
)}`;
}

/** Plain-text lines (for the Markdown file and the CLI summary). */
export function paperLines(cmp: PaperComparison): string[] {
  return cmp.comparisons.map((s) => `${cmp.table.title} — ${seriesTitle(s)}: ${s.statement}`);
}

export function paperNotes(cmp: PaperComparison): string[] {
  return cmp.notes;
}
