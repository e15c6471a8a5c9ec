/**
 * The table model as HTML. Blocks that leave out columns their budget holds fixed get a table of their own (with
 * their own header), so that no column of a block is empty by design; each table scrolls inside its own box.
 */
import { cellText } from './format.js';
import { html, type SafeHtml } from './html.js';
import { shownColumns, uniformColumns, type Cell, type TableGroup, type TableModel, type TableRow } from './table.js';

function cellHtml(model: TableModel, row: TableRow, cell: Cell, i: number): SafeHtml {
  const col = model.columns[i]!;
  const t = cellText(cell, col, row.n?.done);
  const classes = [cell.status, model.kind === 'grid' && cell.baseline ? 'baseline' : ''].filter(Boolean).join(' ');
  const title = cell.errors.length ? cell.errors.slice(0, 5).join('\n') : null;
  return html`<td class="${classes}"${title ? html` title="${title}"` : ''}>${t.value}${t.n ? html`<span class="n">${t.n}</span>` : ''}</td>`;
}

function tableOf(model: TableModel, groups: readonly TableGroup[], shown: readonly number[]): SafeHtml {
  const corner = model.kind === 'grid' ? `${model.rowsAxis ?? ''} \\ ${model.columnsAxis ?? ''}` : (model.rowsAxis ?? '');
  const nCol = model.kind === 'list';
  const head = html`<tr><th>${corner}</th>${nCol ? html`<th>n</th>` : ''}${shown.map((i) => html`<th>${model.columns[i]!.header}</th>`)}</tr>`;
  const width = shown.length + (nCol ? 2 : 1);
  const body = groups.map(
    (g) => html`${g.title ? html`<tr class="group"><th colspan="${width}">${g.title}</th></tr>` : ''}${g.rows.map(
      (r) => html`<tr${r.baseline ? html` class="baseline"` : ''}><th>${r.label}${r.baseline ? ' (baseline)' : ''}${r.companions ? html` <span class="n">${r.companions}</span>` : ''}</th>${nCol ? html`<td class="n">${r.n?.text ?? ''}</td>` : ''}${shown.map((i) => cellHtml(model, r, r.cells[i]!, i))}</tr>`,
    )}`,
  );
  return html`<div class="scroll"><table class="results"><thead>${head}</thead><tbody>${body}</tbody></table></div>`;
}

export function tableHtml(model: TableModel): SafeHtml {
  const tables = uniformColumns(model)
    ? tableOf(model, model.groups, model.columns.map((_, i) => i))
    : model.groups.map((g) => tableOf(model, [g], shownColumns(model, g)));
  return html`${tables}
<ul class="notes">${model.notes.map((n) => html`<li>${n}</li>`)}</ul>`;
}
