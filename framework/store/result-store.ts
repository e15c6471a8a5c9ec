/**
 * The results database (better-sqlite3, WAL). The sweep coordinator is the only writer; readers (query, status,
 * report) open it read-only and never block it.
 *
 * Job-state rules:
 * - A job row is created 'pending' when its cell first appears; its config and hash never change afterwards.
 * - 'running' has one owner: the coordinator process jobs.pid (started at jobs.pid_started) on jobs.host, holding a
 *   lease until jobs.lease_until that it renews every few seconds (renewLeases). Another coordinator takes the job over
 *   (as interrupted, then reruns it) once the lease has expired, or at once when the owner is on its own host and
 *   provably dead (recoverStale). An owner that lost its lease writes nothing more to the job (JobOwnershipLost).
 * - Starting an attempt clears the metrics and results of earlier attempts; metrics are written before the status
 *   changes, and a job's results and its 'done' status are written in one transaction.
 * - A 'done' job is never run again for the same experiment.
 * - A job's log lines (job_logs) are those of its last attempt, capped: see appendLogs.
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import type { ExperimentRow, JobLogRow, JobRow, JobStatus } from './types.js';

/** PRAGMA application_id marking a flip-sweep results database ('FLIP'). */
const APPLICATION_ID = 0x464c4950;

export class StoreError extends Error {
  override name = 'StoreError';
}

/** Thrown (and the write rolled back) when a coordinator writes the outcome of a job it no longer owns. */
export class JobOwnershipLost extends Error {
  override name = 'JobOwnershipLost';
}

/**
 * How long a claim or a renewal holds a job. Longer than the busy timeout (a renewal may wait that long for the write
 * lock) plus a few renewal periods, so that a live owner never loses a job to a slow disk; short enough that a job of
 * a coordinator that vanished (another host, lost session) is taken over within a minute. The owner's clock sets the
 * deadline and the taker's reads it: hosts sharing a database must agree on the time to within a few seconds (NTP).
 */
export const LEASE_SECONDS = 30;
/** How long a write waits for another writer's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 15_000;

/** The coordinator process that owns a running job. */
export interface JobOwner {
  host: string;
  pid: number;
  /** Its start time (clock ticks since boot, /proc/PID/stat field 22); null where unknown. */
  pid_started?: number | null;
}

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
  elapsed_seconds: number | null;
}

export interface NewJob {
  cell_index: number;
  /** Evaluation-only: the position (in the same list) of the job whose weights it evaluates. */
  source?: number | null;
  config: unknown;
  config_hash: string;
  labels: Record<string, string>;
  seed: number;
}

export interface ExperimentInfo {
  name: string;
  description: string;
  spec_path: string | null;
  spec_yaml: string | null;
  spec_resolved: unknown;
}

/**
 * The cap on a job's stored log lines: its first LOG_HEAD_LINES lines (backend choice, data, model size) and its last
 * LOG_TAIL_LINES lines (how it ended) are kept, the lines between are deleted as newer ones arrive; a line longer than
 * LOG_LINE_CHARS is cut. A chatty job thus stores at most ~200 kB of log.
 */
export const LOG_HEAD_LINES = 50;
export const LOG_TAIL_LINES = 150;
export const LOG_LINE_CHARS = 1000;

/** A log line as the coordinator received it. */
export interface LogLine {
  at: string;
  message: string;
}

const now = (): string => new Date().toISOString();
const leaseUntil = (): string => new Date(Date.now() + LEASE_SECONDS * 1000).toISOString();
/** When a running job's lease ends (ms); rows claimed before leases existed count from their last heartbeat. */
function leaseEnd(j: JobRow): number {
  if (j.lease_until) return Date.parse(j.lease_until);
  return j.heartbeat_at ? Date.parse(j.heartbeat_at) + LEASE_SECONDS * 1000 : 0;
}
const clipLine = (s: string): string => (s.length <= LOG_LINE_CHARS ? s : `${s.slice(0, LOG_LINE_CHARS)}... (${s.length - LOG_LINE_CHARS} more characters cut)`);
/** SQLite has no NaN: a diverged value is stored as NULL. */
const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * Why a write to the results database failed and what to do, for a sweep that stops on it. Everything recorded before
 * the failed write is intact (each write is one transaction), and the jobs it left 'running' are taken over by the next
 * sweep at once (their owner is dead by then).
 */
export function describeWriteFailure(path: string, err: unknown): string {
  const code = String((err as { code?: string }).code ?? '');
  const message = (err as Error).message;
  const intact = 'What was recorded before is intact';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return (
      `the results database ${path} cannot be written: ${message}: another process has held a write transaction on it for longer than ` +
      `${BUSY_TIMEOUT_MS / 1000} s. ${intact}; find that process (\`fuser ${path}\` or \`lsof ${path}\` names it), let it finish or stop it, and run the same command again to resume.`
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return (
      `the results database ${path} cannot be written: ${message}: the file or its folder ${dirname(path)} is read-only. ` +
      `${intact}; make them writable (or remount the filesystem read-write) and run the same command again, or pass --db PATH to record elsewhere.`
    );
  }
  if (code.startsWith('SQLITE_FULL') || code.startsWith('SQLITE_IOERR')) {
    return (
      `the results database ${path} cannot be written: ${message} (is the disk full, or a file size limit reached?). ` +
      `${intact}; free space in ${dirname(path)} and run the same command again to resume.`
    );
  }
  return `the results database ${path} cannot be written: ${message}. ${intact}; fix the cause and run the same command again to resume.`;
}

/**
 * A writer needs the folder as well as the file: SQLite creates the -wal and -shm files beside the database, and the
 * sweep its checkpoints. Without this check a read-only folder shows as SQLite's "unable to open database file".
 */
function assertWritable(path: string): void {
  const folder = dirname(path);
  for (const [what, target] of [
    ['its folder', folder],
    ['the file', path],
  ] as const) {
    if (target === path && !existsSync(path)) continue;
    try {
      accessSync(target, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EROFS' ? 'is on a read-only filesystem' : 'is read-only (not writable by this user)';
      throw new StoreError(
        `cannot open the results database ${path}: ${what} ${target} ${why} (${code}); a sweep writes the database, its -wal and -shm ` +
          `files and the checkpoints in ${folder}. Nothing was changed. Choose a writable location with --db PATH (copy the database there ` +
          `to add to it), or make ${target} writable (remount the filesystem read-write) and run the same command again.`,
      );
    }
  }
}

/** The condition on a jobs row that `owner` still runs it, with its parameters from ownerArgs (renewal and fencing). */
const OWNED_BY = "status = 'running' AND host = ? AND pid = ? AND pid_started IS ?";
const ownerArgs = (owner: JobOwner) => [owner.host, owner.pid, owner.pid_started ?? null] as const;

export class ResultStore {
  private constructor(
    readonly path: string,
    readonly db: Database.Database,
  ) {}

  /** Opens (creating it and its folder when writable) and migrates the database. */
  static open(path: string, options: { readonly?: boolean } = {}): ResultStore {
    const readonly = options.readonly ?? false;
    let db: Database.Database;
    try {
      if (!readonly) {
        mkdirSync(dirname(path), { recursive: true });
        assertWritable(path);
      }
      db = new Database(path, { readonly, fileMustExist: readonly, timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const reason = (err as NodeJS.ErrnoException).code === 'SQLITE_CANTOPEN' && readonly ? 'no such database file' : (err as Error).message;
      throw new StoreError(`cannot open the results database ${path}: ${reason}. ${readonly ? 'Run a sweep first, or pass --db PATH to the database it wrote.' : 'Choose a writable location with --db PATH.'}`);
    }
    const store = new ResultStore(path, db);
    try {
      store.prepare(readonly);
    } catch (err) {
      db.close();
      if (err instanceof StoreError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new StoreError(`${path} is not a usable SQLite database (${(err as Error).message}); nothing was changed. Move it away or pass --db PATH.`);
      }
      if (code?.startsWith('SQLITE_BUSY') || code?.startsWith('SQLITE_LOCKED')) {
        throw new StoreError(
          `the results database ${path} is locked: another process has held a write transaction on it for longer than ${BUSY_TIMEOUT_MS / 1000} s (${(err as Error).message}). ` +
            `Nothing was changed; find that process (\`fuser ${path}\` or \`lsof ${path}\` names it), let it finish or stop it, and run the same command again.`,
        );
      }
      if (code?.startsWith('SQLITE_READONLY')) {
        throw new StoreError(
          `cannot use the results database ${path}: ${(err as Error).message}: the file or its folder ${dirname(path)} is read-only. ` +
            'Nothing was changed; make them writable (or remount the filesystem read-write), or choose a writable location with --db PATH.',
        );
      }
      throw new StoreError(`cannot use the results database ${path}: ${(err as Error).message}. Nothing was changed; choose another location with --db PATH.`);
    }
    return store;
  }

  private prepare(readonly: boolean): void {
    // One read transaction, so that a coordinator migrating the same file at this moment is seen either wholly or
    // not at all (never its tables without its application id).
    const { version, appId, tables } = this.db.transaction(() => ({
      version: this.db.pragma('user_version', { simple: true }) as number,
      appId: this.db.pragma('application_id', { simple: true }) as number,
      tables: (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name),
    }))();
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `the results database ${this.path} has schema version ${version}, newer than this release understands (${SCHEMA_VERSION}). ` +
          'It was written by a newer flip-sweep: upgrade, or pass --db PATH to use another database. Nothing was changed.',
      );
    }
    if (appId !== APPLICATION_ID && tables.length > 0) {
      throw new StoreError(
        `${this.path} is an SQLite database of something else (tables: ${tables.slice(0, 5).join(', ')}), not a flip-sweep results database. ` +
          'Nothing was changed; pass --db PATH to choose another file.',
      );
    }
    if (readonly) {
      if (version < SCHEMA_VERSION) throw new StoreError(`the results database ${this.path} has schema version ${version}; run a sweep once to migrate it to ${SCHEMA_VERSION}.`);
      return;
    }
    this.useWal();
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    const migrate = this.db.transaction(() => {
      // Under the write lock: another coordinator may have migrated since the read above; start from what is there now.
      const current = this.db.pragma('user_version', { simple: true }) as number;
      for (let v = current; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`application_id = ${APPLICATION_ID}`);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    });
    if (version < SCHEMA_VERSION) migrate.immediate();
  }

  /**
   * Puts the file in WAL mode. The conversion needs the file to itself, and SQLite answers it with SQLITE_BUSY at once,
   * without running the busy handler, when another coordinator has it open at that moment (seen in CI: six processes
   * creating one new database). So it is retried for up to BUSY_TIMEOUT_MS, and a file another process has converted
   * meanwhile needs nothing: WAL mode is stored in the file.
   */
  private useWal(): void {
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      try {
        if (this.db.pragma('journal_mode', { simple: true }) === 'wal') return;
        if (this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal') return;
      } catch (err) {
        if (!(err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw err;
      }
      if (Date.now() >= deadline) {
        // open() turns this code into its "locked" message.
        throw Object.assign(new Error('database is locked (could not switch it to WAL mode)'), { code: 'SQLITE_BUSY' });
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Creates or updates the experiment and returns its id. */
  upsertExperiment(info: ExperimentInfo): number {
    const t = now();
    this.db
      .prepare(
        `INSERT INTO experiments (name, description, spec_path, spec_yaml, spec_resolved, created_at, updated_at)
         VALUES (@name, @description, @spec_path, @spec_yaml, @spec_resolved, @t, @t)
         ON CONFLICT(name) DO UPDATE SET description = excluded.description, spec_path = excluded.spec_path,
           spec_yaml = excluded.spec_yaml, spec_resolved = excluded.spec_resolved, updated_at = excluded.updated_at`,
      )
      .run({ ...info, spec_resolved: JSON.stringify(info.spec_resolved), t });
    return (this.db.prepare('SELECT id FROM experiments WHERE name = ?').get(info.name) as { id: number }).id;
  }

  experiment(name: string): ExperimentRow | undefined {
    return this.db.prepare('SELECT * FROM experiments WHERE name = ?').get(name) as ExperimentRow | undefined;
  }

  /**
   * Makes `jobs` the experiment's grid: adds the jobs not yet known (as pending), marks the experiment's other jobs
   * (from an earlier version of its spec) as out of the grid, and returns the rows of all given jobs, in the given order.
   */
  syncJobs(experimentId: number, jobs: NewJob[]): JobRow[] {
    const retire = this.db.prepare('UPDATE jobs SET in_grid = 0 WHERE experiment_id = ?');
    const insert = this.db.prepare(
      `INSERT INTO jobs (experiment_id, cell_index, config, config_hash, labels, seed, status, in_grid)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', 1)
       ON CONFLICT(experiment_id, config_hash) DO UPDATE SET cell_index = excluded.cell_index, labels = excluded.labels, in_grid = 1`,
    );
    const select = this.db.prepare('SELECT * FROM jobs WHERE experiment_id = ? AND config_hash = ?');
    const setSource = this.db.prepare('UPDATE jobs SET source_job_id = ? WHERE id = ?');
    return this.db.transaction(() => {
      retire.run(experimentId);
      const ids = jobs.map((j) => {
        insert.run(experimentId, j.cell_index, JSON.stringify(j.config), j.config_hash, JSON.stringify(j.labels), j.seed);
        return (select.get(experimentId, j.config_hash) as JobRow).id;
      });
      jobs.forEach((j, i) => setSource.run(j.source != null ? ids[j.source] : null, ids[i]));
      return ids.map((id) => this.job(id));
    }).immediate();
  }

  job(id: number): JobRow {
    return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow;
  }

  /**
   * Running jobs whose owner is gone become 'interrupted' (and so are run again): their lease has expired, or their
   * owner is on `host` and `isAlive(pid, pid_started)` says it is dead. Read and marked in one write transaction, so a
   * renewal cannot slip in between. Returns how many were recovered.
   */
  recoverStale(experimentId: number, host: string, isAlive: (pid: number, started: number | null) => boolean, nowMs = Date.now()): number {
    const mark = this.db.prepare(
      "UPDATE jobs SET status = 'interrupted', ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
    );
    return this.db.transaction(() => {
      const running = this.db.prepare("SELECT * FROM jobs WHERE experiment_id = ? AND status = 'running'").all(experimentId) as JobRow[];
      let recovered = 0;
      for (const j of running) {
        const owner = `its coordinator (pid ${j.pid} on ${j.host})`;
        let reason: string | null = null;
        if (j.host === host && j.pid !== null && !isAlive(j.pid, j.pid_started)) reason = `interrupted: ${owner} died before the job finished`;
        else if (leaseEnd(j) < nowMs) reason = `interrupted: ${owner} stopped renewing its lease (last held until ${j.lease_until ?? j.heartbeat_at ?? 'never'})`;
        if (reason === null) continue;
        recovered += mark.run(now(), reason, j.id).changes;
      }
      return recovered;
    }).immediate();
  }

  /** Starts an attempt: the job becomes 'running' owned by this coordinator (holding a lease of LEASE_SECONDS) and
   * earlier attempts' results, artifacts and logs are cleared (their curve points when training starts: see
   * trainingStarted). Returns false (and changes nothing) when the job is done or another coordinator runs it. */
  startAttempt(jobId: number, owner: JobOwner & { git_commit: string | null }): boolean {
    return this.db.transaction(() => {
      const t = now();
      const claimed = this.db
        .prepare(
          `UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, heartbeat_at = ?, ended_at = NULL,
             host = ?, pid = ?, pid_started = ?, lease_until = ?, git_commit = ?, error = NULL, last_step = NULL, backend = NULL, device = NULL,
             resumed_from_step = NULL
           WHERE id = ? AND status IN ('pending', 'failed', 'interrupted')`,
        )
        .run(t, t, owner.host, owner.pid, owner.pid_started ?? null, leaseUntil(), owner.git_commit, jobId);
      if (claimed.changes === 0) return false;
      this.deleteRecords(jobId, ['results', 'artifacts', 'job_logs']);
      return true;
    }).immediate();
  }

  /** Removes what a job recorded in these tables (inside the caller's transaction). */
  private deleteRecords(jobId: number, tables: readonly ('results' | 'metrics' | 'artifacts' | 'job_logs')[]): void {
    for (const table of tables) this.db.prepare(`DELETE FROM ${table} WHERE job_id = ?`).run(jobId);
  }

  /**
   * Makes these jobs pending again, for a rerun (`sweep --rerun`): their results, curve points, artifacts and log
   * lines are removed in one transaction, so a report shows the cell as pending until the rerun ends, never a mix of
   * two runs. A job that is running is left as it is. `attempts` is kept: it counts attempts in this database.
   * Jobs of other experiments that copied a reset job's record (copied_from_job_id) are made pending too, with their
   * copies removed: the next sweep of their experiment copies the new record. Returns the ids reset, those left
   * running, and those copies.
   */
  resetJobs(jobIds: readonly number[]): { reset: number[]; running: number[]; copies: number[] } {
    const clear = (id: number) => {
      this.deleteRecords(id, ['results', 'metrics', 'artifacts', 'job_logs']);
      this.db
        .prepare(
          `UPDATE jobs SET status = 'pending', ended_at = NULL, error = NULL, last_step = NULL, resumed_from_step = NULL,
             copied_from_job_id = NULL WHERE id = ?`,
        )
        .run(id);
    };
    return this.db.transaction(() => {
      const reset: number[] = [];
      const running: number[] = [];
      const copies: number[] = [];
      for (const id of jobIds) {
        const job = this.db.prepare('SELECT status FROM jobs WHERE id = ?').get(id) as { status: string } | undefined;
        if (!job) continue;
        if (job.status === 'running') {
          running.push(id);
          continue;
        }
        const copiedBy = this.db.prepare("SELECT id FROM jobs WHERE copied_from_job_id = ? AND status = 'done'").all(id) as { id: number }[];
        for (const copy of copiedBy) {
          clear(copy.id);
          copies.push(copy.id);
        }
        clear(id);
        reset.push(id);
      }
      return { reset, running, copies };
    }).immediate();
  }

  /**
   * Marks a pending job done with what an identical job of another experiment recorded (same config hash, so the
   * same training: results, curve, artifacts, log lines and provenance are copied, and copied_from_job_id names it).
   * Only a training job that never started in this database qualifies. Returns the copied job's id, or null when there
   * is none (or this job is no longer pending).
   */
  copyIdenticalJob(jobId: number): number | null {
    return this.db.transaction(() => {
      const target = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
      if (!target || target.status !== 'pending' || target.attempts !== 0 || target.source_job_id !== null) return null;
      const source = this.db
        .prepare(
          `SELECT * FROM jobs WHERE config_hash = ? AND status = 'done' AND source_job_id IS NULL AND experiment_id != ?
           ORDER BY id LIMIT 1`,
        )
        .get(target.config_hash, target.experiment_id) as JobRow | undefined;
      if (!source) return null;
      this.db
        .prepare(
          `UPDATE jobs SET status = 'done', started_at = ?, ended_at = ?, backend = ?, device = ?, git_commit = ?, host = ?,
             last_step = ?, resumed_from_step = ?, copied_from_job_id = ? WHERE id = ?`,
        )
        .run(source.started_at, source.ended_at, source.backend, source.device, source.git_commit, source.host, source.last_step, source.resumed_from_step, source.id, jobId);
      for (const table of ['results (job_id, name, value) SELECT ?, name, value FROM results', 'artifacts (job_id, name, path) SELECT ?, name, path FROM artifacts',
        'metrics (job_id, step, name, value, elapsed_seconds) SELECT ?, step, name, value, elapsed_seconds FROM metrics',
        'job_logs (job_id, seq, at, message) SELECT ?, seq, at, message FROM job_logs']) {
        this.db.prepare(`INSERT INTO ${table} WHERE job_id = ?`).run(jobId, source.id);
      }
      return source.id;
    }).immediate();
  }

  /** Extends the lease of these jobs by LEASE_SECONDS from now, in one transaction. Returns the ids that are no longer
   * owned by `owner` (taken over after the lease expired, or ended): their owner must stop them and write nothing. */
  renewLeases(owner: JobOwner, jobIds: readonly number[]): number[] {
    if (jobIds.length === 0) return [];
    const renew = this.db.prepare(`UPDATE jobs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND ${OWNED_BY}`);
    return this.db.transaction(() => {
      const t = now();
      const until = leaseUntil();
      return jobIds.filter((id) => renew.run(until, t, id, ...ownerArgs(owner)).changes === 0);
    }).immediate();
  }

  /** Throws JobOwnershipLost unless `owner` still runs the job (inside the caller's transaction, which it rolls back). */
  private assertOwner(jobId: number, owner: JobOwner | undefined): void {
    if (!owner) return;
    const row = this.db.prepare(`SELECT 1 FROM jobs WHERE id = ? AND ${OWNED_BY}`).get(jobId, ...ownerArgs(owner));
    if (!row) throw new JobOwnershipLost(`job ${jobId} is no longer owned by pid ${owner.pid} on ${owner.host}: another sweep took it over after its lease expired`);
  }

  setRuntime(jobId: number, backend: string, device: string): void {
    this.db.prepare('UPDATE jobs SET backend = ?, device = ?, heartbeat_at = ? WHERE id = ?').run(backend, device, now(), jobId);
  }

  /**
   * The attempt's training started on backend/device, from step 0 or from the resume state of step resumedFrom: the
   * curve points an earlier attempt recorded after that step go (those up to it are the resumed run's own history), in
   * one transaction.
   */
  trainingStarted(jobId: number, backend: string, device: string, resumedFrom: number | null): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE jobs SET backend = ?, device = ?, heartbeat_at = ?, resumed_from_step = ? WHERE id = ?').run(backend, device, now(), resumedFrom, jobId);
      this.db.prepare('DELETE FROM metrics WHERE job_id = ? AND step > ?').run(jobId, resumedFrom ?? 0);
    }).immediate();
  }

  /** Appends curve points and refreshes the heartbeat, in one transaction. */
  appendMetrics(jobId: number, points: MetricPoint[], lastStep: number | null): void {
    this.db.transaction(() => {
      this.insertMetrics(jobId, points);
      this.db.prepare('UPDATE jobs SET heartbeat_at = ?, last_step = COALESCE(?, last_step) WHERE id = ?').run(now(), lastStep, jobId);
    }).immediate();
  }

  /** The final numbers and status 'done', together or not at all (with any last curve points).
   * `midway` runs between the two writes (the fault-injection tests kill the process there). With `owner`, nothing is
   * written (JobOwnershipLost) unless it still owns the job. */
  finishJob(
    jobId: number,
    results: Record<string, number>,
    lastPoints: MetricPoint[],
    lastStep: number | null,
    midway?: () => void,
    artifacts: Record<string, string> = {},
    owner?: JobOwner,
  ): void {
    const insert = this.db.prepare('INSERT OR REPLACE INTO results (job_id, name, value) VALUES (?, ?, ?)');
    const artifact = this.db.prepare('INSERT OR REPLACE INTO artifacts (job_id, name, path) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      this.assertOwner(jobId, owner);
      this.insertMetrics(jobId, lastPoints);
      for (const [name, value] of Object.entries(results)) insert.run(jobId, name, finiteOrNull(value));
      for (const [name, path] of Object.entries(artifacts)) artifact.run(jobId, name, path);
      midway?.();
      this.db
        .prepare("UPDATE jobs SET status = 'done', ended_at = ?, error = NULL, last_step = COALESCE(?, last_step) WHERE id = ?")
        .run(now(), lastStep, jobId);
    }).immediate();
  }

  /** Records a failed or interrupted attempt (with any last curve points); with `owner`, only if it still owns the job. */
  endAttempt(
    jobId: number,
    status: Extract<JobStatus, 'failed' | 'interrupted'>,
    error: string,
    lastPoints: MetricPoint[],
    lastStep: number | null,
    owner?: JobOwner,
  ): void {
    this.db.transaction(() => {
      this.assertOwner(jobId, owner);
      this.insertMetrics(jobId, lastPoints);
      this.db
        .prepare('UPDATE jobs SET status = ?, ended_at = ?, error = ?, last_step = COALESCE(?, last_step) WHERE id = ?')
        .run(status, now(), error, lastStep, jobId);
    }).immediate();
  }

  /** Curve points, inside the caller's transaction; NaN/Inf are stored as NULL. */
  private insertMetrics(jobId: number, points: MetricPoint[]): void {
    const insert = this.db.prepare('INSERT INTO metrics (job_id, step, name, value, elapsed_seconds) VALUES (?, ?, ?, ?, ?)');
    for (const p of points) insert.run(jobId, p.step, p.name, finiteOrNull(p.value), p.elapsed_seconds);
  }

  /** Appends log lines (numbered after the job's last one) and enforces the cap (LOG_HEAD_LINES, LOG_TAIL_LINES). */
  appendLogs(jobId: number, lines: LogLine[]): void {
    if (lines.length === 0) return;
    this.db.transaction(() => {
      const last = (this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS n FROM job_logs WHERE job_id = ?').get(jobId) as { n: number }).n;
      const end = last + lines.length;
      // Lines of this batch that the cap would delete at once are not written at all.
      const kept = (seq: number): boolean => seq <= LOG_HEAD_LINES || seq > end - LOG_TAIL_LINES;
      const insert = this.db.prepare('INSERT INTO job_logs (job_id, seq, at, message) VALUES (?, ?, ?, ?)');
      lines.forEach((line, i) => {
        if (kept(last + 1 + i)) insert.run(jobId, last + 1 + i, line.at, clipLine(line.message));
      });
      this.db.prepare('DELETE FROM job_logs WHERE job_id = ? AND seq > ? AND seq <= ?').run(jobId, LOG_HEAD_LINES, end - LOG_TAIL_LINES);
    }).immediate();
  }

  /** A job's stored log lines in order (only the last `last` of them when given), and how many lines it sent in all
   * (more than stored when the cap left some out). */
  logs(jobId: number, last: number | null = null): { lines: JobLogRow[]; received: number } {
    const received = (this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS n FROM job_logs WHERE job_id = ?').get(jobId) as { n: number }).n;
    const lines = (
      last === null
        ? this.db.prepare('SELECT * FROM job_logs WHERE job_id = ? ORDER BY seq').all(jobId)
        : this.db.prepare('SELECT * FROM (SELECT * FROM job_logs WHERE job_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq').all(jobId, last)
    ) as JobLogRow[];
    return { lines, received };
  }

  /** Results of a job by name. */
  results(jobId: number): Record<string, number> {
    const rows = this.db.prepare('SELECT name, value FROM results WHERE job_id = ?').all(jobId) as { name: string; value: number | null }[];
    return Object.fromEntries(rows.filter((r) => r.value !== null).map((r) => [r.name, r.value as number]));
  }

  artifact(jobId: number, name: string): string | null {
    const row = this.db.prepare('SELECT path FROM artifacts WHERE job_id = ? AND name = ?').get(jobId, name) as { path: string } | undefined;
    return row?.path ?? null;
  }

  touchExperiment(experimentId: number): void {
    this.db.prepare('UPDATE experiments SET updated_at = ? WHERE id = ?').run(now(), experimentId);
  }
}
