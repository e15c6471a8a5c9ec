/** The experiment page: header, table, paper comparison, plots, per-job details and the spec. Opens from disk. */
import { stringify as toYaml } from 'yaml';
import type { Layout } from './axes.js';
import type { ChartFile } from './charts.js';
import { MAX_JOB_CHARTS } from './charts.js';
import { formatNumber } from './format.js';
import { html, page, type SafeHtml } from './html.js';
import type { ExperimentData, JobData } from './load.js';
import { paperHtml } from './paper-html.js';
import type { PaperComparison } from './paper.js';
import { tableHtml } from './table-html.js';
import type { TableModel } from './table.js';
import { unitOf, toDisplay } from './columns.js';
import type { JobStatus } from '../store/types.js';
import { JOB_STATUSES } from '../store/types.js';

export interface PageInput {
  data: ExperimentData;
  layout: Layout;
  table: TableModel;
  paper: PaperComparison | null;
  /** Why there is no paper comparison although report.paper is set. */
  paperProblem: string | null;
  charts: ChartFile[];
  files: string[];
  generatedAt: string;
  dbPath: string;
}

const ERROR_PREVIEW = 160;

function counts(jobs: readonly JobData[]): Record<JobStatus, number> {
  const c: Record<JobStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, interrupted: 0 };
  for (const j of jobs) c[j.status]++;
  return c;
}

function resultText(name: string, v: number | null | undefined): string {
  if (typeof v !== 'number') return '—';
  const unit = unitOf(name);
  return formatNumber(unit, toDisplay(unit, v)) + (unit === 'percent' ? '%' : unit === 'mib' ? ' MiB' : unit === 'seconds' ? ' s' : '');
}

function figure(c: ChartFile, width: number, height: number): SafeHtml {
  return html`<figure><img src="${c.file}" alt="${c.title}" width="${width}" height="${height}"><figcaption>${c.caption}</figcaption></figure>`;
}

function jobsSection(input: PageInput): SafeHtml {
  const { data, layout } = input;
  const axes = layout.axes.map((a) => a.name);
  const shown = layout.report.metrics.filter((m) => !m.includes('.') && !/rel|relative|^batch/.test(m));
  const jobCharts = new Map(input.charts.filter((c) => c.jobId !== undefined).map((c) => [c.jobId!, c]));
  const summary = html`<div class="scroll"><table class="jobs"><thead><tr><th>job</th>${axes.map((a) => html`<th>${a}</th>`)}<th>status</th><th>attempts</th><th>backend</th><th>last step</th>${shown.map((m) => html`<th>${m}</th>`)}<th>error</th></tr></thead><tbody>
${data.jobs.map(
  (j) => html`<tr><th><a href="#job-${j.id}">${j.id}</a></th>${axes.map((a) => html`<td>${j.labels[a] ?? '—'}</td>`)}<td class="status-${j.status}">${j.status}</td><td>${j.attempts}</td><td>${j.backend ?? '—'}</td><td>${j.lastStep ?? '—'}</td>${shown.map(
    (m) => html`<td>${j.status === 'done' ? resultText(m, j.results.get(m)) : '—'}</td>`,
  )}<td class="left">${j.error ? (j.error.length > ERROR_PREVIEW ? `${j.error.slice(0, ERROR_PREVIEW)}…` : j.error) : ''}</td></tr>`,
)}
</tbody></table></div>`;
  const details = data.jobs.map((j) => {
    const chart = jobCharts.get(j.id);
    const curves = [...j.curvePoints].map(([name, n]) => `${name} (${n} points)`).join(', ');
    const results = [...j.results].map(([k, v]) => `${k} = ${v === null ? 'null' : resultText(k, v)}`).join('\n');
    return html`<details id="job-${j.id}"><summary>job ${j.id} — <span class="status-${j.status}">${j.status}</span> — ${Object.entries(j.labels).map(([k, v]) => `${k}=${v}`).join(', ')}</summary>
<p class="meta">cell ${j.cellIndex}, seed ${j.seed}, attempts ${j.attempts}, backend ${j.backend ?? '—'}, device ${j.device ?? '—'}, host ${j.host ?? '—'}, git ${j.gitCommit ?? '—'}, config hash <code>${j.configHash}</code><br>started ${j.startedAt ?? '—'}, ended ${j.endedAt ?? '—'}, heartbeat ${j.heartbeatAt ?? '—'}, last step ${j.lastStep ?? '—'}</p>
${j.error ? html`<p><b>error</b></p><pre>${j.error}</pre>` : ''}
${results ? html`<p><b>results</b>${j.status === 'done' ? '' : ' (not used in the tables: the job is not done)'}</p><pre>${results}</pre>` : ''}
<p><b>curves</b>: ${curves || 'none recorded'}${curves ? html` — every point in <a href="curves.csv">curves.csv</a> (job_id ${j.id})` : ''}</p>
${chart ? html`<img src="${chart.file}" alt="curves of job ${j.id}" width="520" height="300">` : ''}
<details><summary>config</summary><pre>${JSON.stringify(j.config, null, 2)}</pre></details>
</details>`;
  });
  const limited = data.jobs.length > MAX_JOB_CHARTS ? html`<p class="notes">Per-job plots are drawn for the first ${MAX_JOB_CHARTS} of ${data.jobs.length} jobs; the curves of every job are in <a href="curves.csv">curves.csv</a> and the aggregate plots above.</p>` : '';
  return html`<h2 id="jobs">Jobs</h2>${summary}${limited}${details}`;
}

function specSection(data: ExperimentData, layout: Layout): SafeHtml {
  const resolved = data.resolved ? toYaml(data.resolved.spec ?? null, { lineWidth: 0 }) : null;
  return html`<h2 id="spec">Spec</h2>
<p class="meta">File: ${data.row.spec_path ?? data.resolved?.file ?? '—'}. Axes (declaration order): ${layout.axes.map((a) => `${a.name} [${a.labels.join(', ')}]`).join('; ') || 'none'}. Report: rows ${layout.rowsAxis ?? '—'}, columns ${layout.columnsAxis ?? '—'}, metrics ${layout.report.metrics.join(', ')}, baseline ${layout.report.baseline ? JSON.stringify(layout.report.baseline) : '—'}, paper ${layout.report.paper ?? '—'}.</p>
<details open><summary>as written</summary><pre>${data.row.spec_yaml ?? '(not stored)'}</pre></details>
<details><summary>as resolved (extends and --set applied)</summary><pre>${resolved ?? '(not stored)'}</pre></details>`;
}

export function experimentPage(input: PageInput): string {
  const { data, table } = input;
  const c = counts(data.jobs);
  const aggregate = input.charts.filter((ch) => ch.jobId === undefined);
  const body = html`<p class="meta"><a href="../index.html">all experiments</a></p>
<h1>${data.row.name}</h1>
<p>${data.row.description}</p>
<p class="meta">${data.jobs.length} jobs: ${JOB_STATUSES.map((s) => html`<span class="status-${s}">${c[s]} ${s}</span>`).map((x, i) => (i ? html`, ${x}` : x))}. Experiment created ${data.row.created_at}, updated ${data.row.updated_at}. Report generated ${input.generatedAt} from <code>${input.dbPath}</code>.</p>
<p class="meta">Files: ${input.files.map((f, i) => html`${i ? ', ' : ''}<a href="${f}">${f}</a>`)}</p>
<h2 id="table">Results</h2>
${tableHtml(table)}
${input.paper ? paperHtml(input.paper) : ''}
${input.paperProblem ? html`<p class="notes">${input.paperProblem}</p>` : ''}
<h2 id="plots">Plots</h2>
${aggregate.length ? aggregate.map((ch) => figure(ch, 760, 440)) : html`<p class="notes">No curves or results to plot yet.</p>`}
${jobsSection(input)}
${specSection(data, input.layout)}`;
  return page(`${data.row.name} — FLIP sweep report`, body);
}
