/** `npm run status [-- --experiment NAME] [--db PATH]`: experiments and their jobs by state. */
import { JOB_STATUSES, type JobRow } from '../store/types.js';
import { DEFAULT_DB, EXIT, fail, openStore, parseCli } from './common.js';
import { formatRows } from './format-rows.js';

const USAGE = `usage: npm run status [-- --experiment NAME] [--db PATH]

Without --experiment: every experiment with its job counts by state. With it: each job, its labels, state and error.`;

const args = parseCli('status', USAGE, { experiment: { type: 'string' }, db: { type: 'string' } });
if (args.values.help) fail(USAGE, EXIT.ok);
const store = openStore(args.values.db ?? DEFAULT_DB, { readonly: true });

const name = args.values.experiment;
if (name === undefined) {
  const rows = store.db
    .prepare(
      `SELECT e.name AS experiment, COUNT(j.id) AS jobs, ${JOB_STATUSES.map((s) => `SUM(j.status = '${s}') AS ${s}`).join(', ')}, e.updated_at AS updated
       FROM experiments e LEFT JOIN jobs j ON j.experiment_id = e.id GROUP BY e.id ORDER BY e.name`,
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
  const jobs = store.db.prepare('SELECT * FROM jobs WHERE experiment_id = ? ORDER BY cell_index').all(experiment.id) as JobRow[];
  const rows = jobs.map((j) => ({
    id: j.id,
    labels: Object.entries(JSON.parse(j.labels) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(' '),
    status: j.status,
    attempts: j.attempts,
    step: j.last_step,
    backend: j.backend,
    error: j.error?.split('\n')[0] ?? '',
  }));
  process.stdout.write(formatRows(['id', 'labels', 'status', 'attempts', 'step', 'backend', 'error'], rows, 'table'));
}
store.close();
