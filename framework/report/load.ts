/**
 * Reads one experiment (or the list of all of them) from the results database, read-only, inside one read
 * transaction so that a sweep writing at the same time (WAL) cannot hand us a half-updated picture.
 * One query per table, never one per job: a report over 1,000 jobs is four statements.
 */
import { existsSync } from 'node:fs';
import { MIGRATIONS } from '../store/schema.js';
import type { ExperimentRow, JobRow, JobStatus, ResolvedSpecRecord } from '../store/types.js';
import { ReportError } from './errors.js';
import { openReadOnly, type Database } from './sqlite.js';
import { TAIL_GAIN_RESULT, curveTailGain } from './tail-gain.js';

/** One point series of a job: parallel arrays ordered by step. */
export interface Curve {
  step: number[];
  value: number[];
  /** Seconds since the job started when the point was recorded; null where the writer did not know. */
  elapsed: (number | null)[];
}

export interface JobData {
  id: number;
  cellIndex: number;
  status: JobStatus;
  attempts: number;
  seed: number;
  labels: Record<string, string>;
  config: unknown;
  configHash: string;
  backend: string | null;
  device: string | null;
  host: string | null;
  gitCommit: string | null;
  error: string | null;
  startedAt: string | null;
  endedAt: string | null;
  heartbeatAt: string | null;
  lastStep: number | null;
  /** Final numbers (results table). The tables only use them when status is 'done'. */
  results: Map<string, number | null>;
  /** The curves the plots use (CHART_CURVES), each ordered by step. */
  curves: Map<string, Curve>;
  /** Every curve the job recorded, name -> number of points (all of them are in ExperimentData.curvesCsv). */
  curvePoints: Map<string, number>;
}

/** Curves loaded as numbers (for plots); the others are only counted and exported as CSV text. */
export const CHART_CURVES = ['loss', 'zero_shot_top1'] as const;

export interface ExperimentData {
  row: ExperimentRow;
  /** Parsed spec_resolved; null when the sweep stored none (old or hand-made databases). */
  resolved: ResolvedSpecRecord | null;
  jobs: JobData[];
  /** Every metric point of every job as CSV lines (no header), read from the same snapshot. */
  curvesCsv: string;
}

export interface ExperimentSummary {
  id: number;
  name: string;
  description: string;
  createdAt: string;
  /** Latest of the experiment's own update time and its jobs' start/heartbeat/end times. */
  lastUpdate: string;
  counts: Record<JobStatus, number>;
  total: number;
}

/** Opens the database read-only and checks it is a results database this release understands. */
export function openResultsDb(path: string): Database {
  if (!existsSync(path)) {
    throw new ReportError(
      `report: the results database ${path} does not exist. Run a sweep first (npm run sweep -- <spec.yaml>) or ` +
        `point --db at an existing database.`,
    );
  }
  let db: Database;
  try {
    db = openReadOnly(path);
  } catch (err) {
    throw new ReportError(`report: cannot open ${path} read-only: ${(err as Error).message}`);
  }
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version === 0) {
    db.close();
    throw new ReportError(`report: ${path} is not a results database (PRAGMA user_version is 0, expected ${MIGRATIONS.length}).`);
  }
  if (version > MIGRATIONS.length) {
    db.close();
    throw new ReportError(
      `report: ${path} has schema version ${version}, newer than this release understands (${MIGRATIONS.length}); ` +
        `update the project to report on it.`,
    );
  }
  return db;
}

function emptyCounts(): Record<JobStatus, number> {
  return { pending: 0, running: 0, done: 0, failed: 0, interrupted: 0 };
}

export function listExperiments(db: Database): ExperimentSummary[] {
  const inGrid = hasGridColumn(db) ? ' AND j.in_grid = 1' : '';
  const rows = db
    .prepare<{
      id: number; name: string; description: string; created_at: string; updated_at: string;
      status: JobStatus | null; n: number; last: string | null;
    }>(
      `SELECT e.id, e.name, e.description, e.created_at, e.updated_at, j.status AS status, count(j.id) AS n,
              max(max(coalesce(j.ended_at, ''), coalesce(j.heartbeat_at, ''), coalesce(j.started_at, ''))) AS last
         FROM experiments e LEFT JOIN jobs j ON j.experiment_id = e.id${inGrid}
        GROUP BY e.id, j.status ORDER BY e.id`,
    )
    .all();
  const byId = new Map<number, ExperimentSummary>();
  for (const r of rows) {
    let s = byId.get(r.id);
    if (!s) {
      s = { id: r.id, name: r.name, description: r.description, createdAt: r.created_at, lastUpdate: r.updated_at, counts: emptyCounts(), total: 0 };
      byId.set(r.id, s);
    }
    if (r.status) {
      s.counts[r.status] += r.n;
      s.total += r.n;
    }
    if (r.last && r.last > s.lastUpdate) s.lastUpdate = r.last;
  }
  return [...byId.values()];
}

function unknownExperiment(db: Database, name: string): ReportError {
  const known = listExperiments(db).map((e) => JSON.stringify(e.name));
  const list = known.length ? `Known experiments: ${known.join(', ')}.` : 'The database holds no experiments yet.';
  return new ReportError(`report: no experiment named ${JSON.stringify(name)} in the results database. ${list}`);
}

function parseJson<T>(text: string | null, what: string): T | null {
  if (text === null || text === '') return null;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ReportError(`report: ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function sortCurve(c: Curve): void {
  const order = c.step.map((_, i) => i).sort((a, b) => c.step[a]! - c.step[b]!);
  c.step = order.map((i) => c.step[i]!);
  c.value = order.map((i) => c.value[i]!);
  c.elapsed = order.map((i) => c.elapsed[i]!);
}

/**
 * Reports show the jobs of each experiment's current grid: jobs from an earlier version of its spec (in_grid = 0,
 * schema 7) are left out. Databases written before schema 7 have no such column and no such jobs.
 */
function hasGridColumn(db: Database): boolean {
  return Number(db.pragma('user_version', { simple: true })) >= 7;
}

export function loadExperiment(db: Database, name: string): ExperimentData {
  // SQL over `jobs`: the experiment's jobs in its current grid.
  const inGrid = hasGridColumn(db) ? 'experiment_id = ? AND in_grid = 1' : 'experiment_id = ?';
  const read = db.transaction(() => {
    const row = db.prepare<ExperimentRow>('SELECT * FROM experiments WHERE name = ?').get(name);
    if (!row) throw unknownExperiment(db, name);
    const resolved = parseJson<ResolvedSpecRecord>(row.spec_resolved, `experiments.spec_resolved of "${name}"`);

    const jobRows = db.prepare<JobRow>(`SELECT * FROM jobs WHERE ${inGrid} ORDER BY cell_index, id`).all(row.id);
    const jobs: JobData[] = [];
    const byId = new Map<number, JobData>();
    for (const j of jobRows) {
      const job: JobData = {
        id: j.id,
        cellIndex: j.cell_index,
        status: j.status,
        attempts: j.attempts,
        seed: j.seed,
        labels: parseJson<Record<string, string>>(j.labels, `jobs.labels of job ${j.id}`) ?? {},
        config: parseJson<unknown>(j.config, `jobs.config of job ${j.id}`),
        configHash: j.config_hash,
        backend: j.backend,
        device: j.device,
        host: j.host,
        gitCommit: j.git_commit,
        error: j.error,
        startedAt: j.started_at,
        endedAt: j.ended_at,
        heartbeatAt: j.heartbeat_at,
        lastStep: j.last_step,
        results: new Map(),
        curves: new Map(),
        curvePoints: new Map(),
      };
      jobs.push(job);
      byId.set(job.id, job);
    }

    const results = db
      .prepare(`SELECT job_id, name, value FROM results WHERE job_id IN (SELECT id FROM jobs WHERE ${inGrid})`)
      .raw(true)
      .all(row.id) as [number, string, number | null][];
    for (const [jobId, metric, value] of results) byId.get(jobId)?.results.set(metric, value);

    // No ORDER BY: the (job_id, name, step) index already yields each job's points in order, and sorting in a temp
    // B-tree doubled the load time; curves found out of order are sorted below. Evaluation points without their own
    // elapsed_seconds take the value of the elapsed_seconds curve at the same step.
    const points = db
      .prepare(
        `SELECT m.job_id, m.name, m.step, m.value,
                coalesce(m.elapsed_seconds, (SELECT e.value FROM metrics e WHERE e.job_id = m.job_id AND e.name = 'elapsed_seconds' AND e.step = m.step))
           FROM metrics m
          WHERE m.job_id IN (SELECT id FROM jobs WHERE ${inGrid}) AND m.name IN (${CHART_CURVES.map(() => '?').join(', ')})`,
      )
      .raw(true)
      .iterate(row.id, ...CHART_CURVES) as IterableIterator<[number, string, number, number | null, number | null]>;
    let curJob = -1;
    let curName = '';
    let curve: Curve | undefined;
    const unsorted = new Set<Curve>();
    for (const [jobId, metric, step, value, elapsed] of points) {
      if (value === null) continue;
      if (jobId !== curJob || metric !== curName || !curve) {
        curJob = jobId;
        curName = metric;
        const job = byId.get(jobId);
        if (!job) continue;
        curve = job.curves.get(metric);
        if (!curve) {
          curve = { step: [], value: [], elapsed: [] };
          job.curves.set(metric, curve);
        }
      }
      const n = curve.step.length;
      if (n > 0 && curve.step[n - 1]! > step) unsorted.add(curve);
      curve.step.push(step);
      curve.value.push(value);
      curve.elapsed.push(elapsed);
    }
    for (const c of unsorted) sortCurve(c);
    // Derived from the curve, for tables (report.metrics) like any result: how much the last 20% of training added.
    for (const job of jobs) {
      const gain = job.status === 'done' ? curveTailGain(job.curves.get('zero_shot_top1')) : null;
      if (gain !== null) job.results.set(TAIL_GAIN_RESULT, gain);
    }

    const counts = db
      .prepare(`SELECT job_id, name, count(*) FROM metrics WHERE job_id IN (SELECT id FROM jobs WHERE ${inGrid}) GROUP BY job_id, name`)
      .raw(true)
      .all(row.id) as [number, string, number][];
    for (const [jobId, metric, n] of counts) byId.get(jobId)?.curvePoints.set(metric, n);

    // SQLite formats the numbers (much faster than JS for 10^5+ points); one string per job stays far below
    // SQLite's string length limit however long the sweep.
    const csvParts = db
      .prepare(
        `SELECT group_concat(job_id || ',"' || replace(name, '"', '""') || '",' || step || ',' || coalesce(value, '') || ',' ||
                             coalesce(elapsed_seconds, ''), char(10))
           FROM metrics WHERE job_id IN (SELECT id FROM jobs WHERE ${inGrid}) GROUP BY job_id ORDER BY job_id`,
      )
      .raw(true)
      .all(row.id) as [string][];
    const curvesCsv = csvParts.map((p) => p[0]).join('\n');
    return { row, resolved, jobs, curvesCsv };
  });
  return read();
}
