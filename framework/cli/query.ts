/** `npm run query -- "SELECT ..." [--format table|csv|json] [--db PATH]`: read-only SQL over the results database. */
import { DEFAULT_DB, EXIT, fail, openStore, parseCli } from './common.js';
import { formatRows, FORMATS, type Format } from './format-rows.js';

const USAGE = `usage: npm run query -- "SELECT ..." [--format table|csv|json] [--db PATH]

Read-only SQL over the results database (default ${DEFAULT_DB}). Tables: experiments, jobs, metrics, results, artifacts.
Example: npm run query -- "SELECT j.labels, r.value FROM jobs j JOIN results r ON r.job_id = j.id WHERE r.name = 'zero_shot_top1'"`;

const args = parseCli('query', USAGE, { format: { type: 'string' }, db: { type: 'string' } });
if (args.values.help) fail(USAGE, EXIT.ok);
if (args.positionals.length !== 1) fail(`query: expected one SQL statement (quote it), found ${args.positionals.length} arguments\n\n${USAGE}`, EXIT.invalid);
const format = (args.values.format ?? 'table') as Format;
if (!FORMATS.includes(format)) fail(`query: --format "${format}" is not known; allowed: ${FORMATS.join(', ')}`, EXIT.invalid);

const store = openStore(args.values.db ?? DEFAULT_DB, { readonly: true });
const sql = args.positionals[0];
let statement;
try {
  statement = store.db.prepare(sql);
} catch (err) {
  fail(`query: the SQL does not compile: ${(err as Error).message}\n  ${sql}`, EXIT.invalid);
}
if (!statement.reader) {
  fail(`query: refused, "npm run query" is read-only and this statement would change the database. Only statements that return rows (SELECT, WITH, PRAGMA reads) are run.\n  ${sql}`, EXIT.invalid);
}
try {
  const rows = statement.all() as Record<string, unknown>[];
  const columns = statement.columns().map((c) => c.name);
  process.stdout.write(formatRows(columns, rows, format));
} catch (err) {
  fail(`query: ${(err as Error).message}`, EXIT.failed);
} finally {
  store.close();
}
