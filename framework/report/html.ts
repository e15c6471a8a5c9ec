/**
 * HTML building with escaping by default: every value interpolated into the `html` tag is escaped unless it is
 * itself SafeHtml (built by the tag). Strings from specs, configs, labels and errors can therefore never become markup.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Marks trusted markup (constants of this module's callers only, never data). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export const STYLE = raw(`<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1360px; padding: 0 16px; color: #1d1d1f; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; vertical-align: top; }
th:first-child, td.left { text-align: left; }
thead th { border-bottom: 2px solid #333; }
tr.group th { text-align: left; background: #f3f6fa; font-style: italic; }
tr.baseline td, tr.baseline th, td.baseline { background: #e9e9e9; }
td.failed, td.interrupted { color: #b00020; font-weight: 600; } td.running, td.pending { color: #8a6d00; }
td.missing, td.no-value { color: #888; } td.paper { color: #445; font-style: italic; }
span.n { color: #777; font-size: 11px; margin-left: 4px; white-space: nowrap; }
.notes { color: #555; font-size: 13px; } .notes li { margin: 2px 0; }
.note { color: #555; font-size: 12px; }
.verdict { font-weight: 700; padding: 1px 6px; border-radius: 4px; }
.verdict.agrees { background: #dff3e4; color: #1b5e20; } .verdict.disagrees { background: #fde2e1; color: #b00020; }
.verdict.cannot { background: #eee; color: #555; }
figure { display: inline-block; margin: 8px 12px 16px 0; vertical-align: top; width: calc(50% - 16px); min-width: 420px; }
.scroll { overflow-x: auto; max-width: 100%; }
.scroll > table { margin: 0 0 4px; }
table.results td, table.results th { white-space: nowrap; }
table.claims { width: 100%; min-width: 900px; table-layout: fixed; }
table.claims tbody th { font-weight: normal; } table.claims thead th:nth-child(-n+3) { text-align: left; }
p, li, figcaption { overflow-wrap: break-word; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; } figcaption { font-size: 12px; color: #555; }
pre { background: #f6f8fa; padding: 10px; overflow: auto; font-size: 12px; max-height: 480px; white-space: pre-wrap; word-break: break-word; }
details { margin: 4px 0; } summary { cursor: pointer; }
.status-done { color: #1b5e20; } .status-failed, .status-interrupted { color: #b00020; } .status-running, .status-pending { color: #8a6d00; }
.meta { color: #555; } code { background: #f1f1f1; padding: 0 3px; }
table.jobs td, table.jobs th { font-size: 12px; }
</style>`);

export function page(title: string, body: SafeHtml): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${STYLE}
</head>
<body>
${body}
</body>
</html>
`.value;
}
