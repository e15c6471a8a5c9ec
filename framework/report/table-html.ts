/** The table model as an HTML <table>. */
import { cellText } from './format.js';
import { html, type SafeHtml } from './html.js';
import type { Cell, TableModel, TableRow } from './table.js';

function cellHtml(model: TableModel, row: TableRow, cell: Cell, i: number): SafeHtml {
  const col = model.columns[i]!;
  const t = cellText(cell, col, row.n?.done);
  const classes = [cell.status, model.kind === 'grid' && cell.baseline ? 'baseline' : ''].filter(Boolean).join(' ');
  const title = cell.errors.length ? cell.errors.slice(0, 5).join('\n') : null;
  return html`<td class="${classes}"${title ? html` title="${title}"` : ''}>${t.value}${t.n ? html`<span class="n">${t.n}</span>` : ''}</td>`;
}

export function tableHtml(model: TableModel): SafeHtml {
  const corner = model.kind === 'grid' ? `${model.rowsAxis ?? ''} \\ ${model.columnsAxis ?? ''}` : (model.rowsAxis ?? '');
  const nCol = model.kind === 'list';
  const head = html`<tr><th>${corner}</th>${nCol ? html`<th>n</th>` : ''}${model.columns.map((c) => html`<th>${c.header}</th>`)}</tr>`;
  const width = model.columns.length + (nCol ? 2 : 1);
  const body = model.groups.map(
    (g) => html`${g.title ? html`<tr class="group"><th colspan="${width}">${g.title}</th></tr>` : ''}${g.rows.map(
      (r) => html`<tr${r.baseline ? html` class="baseline"` : ''}><th>${r.label}${r.companions ? html` <span class="n">${r.companions}</span>` : ''}${r.baseline ? ' (baseline)' : ''}</th>${nCol ? html`<td class="n">${r.n?.text ?? ''}</td>` : ''}${r.cells.map((c, i) => cellHtml(model, r, c, i))}</tr>`,
    )}`,
  );
  return html`<div class="scroll"><table class="results"><thead>${head}</thead><tbody>${body}</tbody></table></div>
<ul class="notes">${model.notes.map((n) => html`<li>${n}</li>`)}</ul>`;
}
