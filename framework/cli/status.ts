/** `npm run status [-- --experiment NAME [--logs N|all]] [--db PATH]`: experiments and their jobs by state, and the
 * jobs' log lines. */
import { LOG_HEAD_LINES, LOG_TAIL_LINES } from '../store/result-store.js';
import { JOB_STATUSES, type JobLogRow, type JobRow } from '../store/types.js';
import { labelsText } from '../spec/label.js';
import { DEFAULT_DB, EXIT, fail, openStore, parseCli } from './common.js';
import { formatRows } from './format-rows.js';

const DEFAULT_LOG_LINES = 5;

const USAGE = `usage: npm run status [-- --experiment NAME [--logs N|all]] [--db PATH]

Without --experiment: every experiment with its job counts by state.
With it: each job, its labels, state and error; then, per job, the log lines its trainer wrote (backend chosen and
why, data, model size, phases, checkpoints) in its last attempt.

  --logs N|all   log lines shown per job: the last N (default ${DEFAULT_LOG_LINES}), all of them, or 0 for none.
                 The database keeps the first ${LOG_HEAD_LINES} and the last ${LOG_TAIL_LINES} lines of each job.`;

const args = parseCli('status', USAGE, { experiment: { type: 'string' }, logs: { type: 'string' }, db: { type: 'string' } });
if (args.values.help) fail(USAGE, EXIT.ok);
if (args.positionals.length > 0) fail(`status: unexpected argument "${args.positionals[0]}"\n\n${USAGE}`, EXIT.invalid);
const name = args.values.experiment;
if (args.values.logs !== undefined && name === undefined) fail(`status: --logs shows the log lines of one experiment's jobs; add --experiment NAME\n\n${USAGE}`, EXIT.invalid);
const logLines = parseLogs(args.values.logs);
const store = openStore(args.values.db ?? DEFAULT_DB, { readonly: true });

if (name === undefined) {
  const rows = store.db
    .prepare(
      `SELECT e.name AS experiment, COUNT(j.id) AS jobs, ${JOB_STATUSES.map((s) => `SUM(j.status = '${s}') AS ${s}`).join(', ')}, e.updated_at AS updated
       FROM experiments e LEFT JOIN jobs j ON j.experiment_id = e.id AND j.in_grid = 1 GROUP BY e.id ORDER BY e.name`,
    )
    .all() as Record<string, unknown>[];
  if (rows.length === 0) console.log(`no experiments yet in ${store.path}`);
  else process.stdout.write(formatRows(['experiment', 'jobs', ...JOB_STATUSES, 'updated'], rows.map((r) => ({ ...r, ...Object.fromEntries(JOB_STATUSES.map((s) => [s, r[s] ?? 0])) })), 'table'));
} else {
  const experiment = store.experiment(name);
  if (!experiment) {
    const known = (store.db.prepare('SELECT name FROM experiments ORDER BY name').all() as { name: string }[]).map((r) => r.name);
    fail(`status: no experiment named "${name}" in ${store.path}; known: ${known.join(', ') || '(none)'}`, EXIT.invalid);
  }
  // The jobs of the spec as last swept; those of its earlier versions are kept in the database but not listed.
  const jobs = store.db.prepare('SELECT * FROM jobs WHERE experiment_id = ? AND in_grid = 1 ORDER BY cell_index').all(experiment.id) as JobRow[];
  const earlier = (store.db.prepare('SELECT COUNT(*) AS n FROM jobs WHERE experiment_id = ? AND in_grid = 0').get(experiment.id) as { n: number }).n;
  const rows = jobs.map((j) => ({
    id: j.id,
    labels: Object.entries(JSON.parse(j.labels) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(' '),
    status: j.status,
    attempts: j.attempts,
    step: j.last_step,
    // The step a resumed attempt went on from (its mid-training resume state), when it did not start at 0.
    resumed: j.resumed_from_step ?? '',
    backend: j.backend,
    error: j.error?.split('\n')[0] ?? '',
  }));
  process.stdout.write(formatRows(['id', 'labels', 'status', 'attempts', 'step', 'resumed', 'backend', 'error'], rows, 'table'));
  if (earlier > 0) console.log(`(${earlier} job${earlier === 1 ? '' : 's'} of earlier versions of the spec kept in the database, not listed: SELECT * FROM jobs WHERE in_grid = 0)`);
  if (logLines !== 0) {
    for (const job of jobs) {
      // A job never started has no log to show.
      if (job.attempts === 0) continue;
      const { lines, received } = store.logs(job.id, logLines);
      const shown = lines.length === received ? `${received} log line${received === 1 ? '' : 's'}` : `${lines.length} of ${received} log lines`;
      console.log(`\njob ${job.id} ${labelsText(JSON.parse(job.labels) as Record<string, string>)} (${job.status}): ${lines.length === 0 ? 'no log lines' : shown}`);
      for (const text of logText(lines)) console.log(text);
    }
  }
}
store.close();

/** --logs: a count of lines (0 = none) or 'all' (null). */
function parseLogs(value: string | undefined): number | null {
  if (value === undefined) return DEFAULT_LOG_LINES;
  if (value === 'all') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--logs: found "${value}"; allowed: an integer >= 0 (the last N lines of each job) or "all"`, EXIT.invalid);
  return n;
}

/** Indented lines with the time each was received; where the cap left lines out, a line says how many. */
function logText(lines: JobLogRow[]): string[] {
  const out: string[] = [];
  lines.forEach((line, i) => {
    const gap = i > 0 ? line.seq - lines[i - 1].seq - 1 : 0;
    if (gap > 0) out.push(`  ... ${gap} line${gap === 1 ? '' : 's'} left out (the database keeps the first ${LOG_HEAD_LINES} and the last ${LOG_TAIL_LINES} lines of a job)`);
    const time = line.at.slice(0, 19).replace('T', ' ');
    for (const text of line.message.split('\n')) out.push(`  ${time}  ${text}`);
  });
  return out;
}
