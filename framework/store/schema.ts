/**
 * The results database schema, as numbered migrations. PRAGMA user_version holds the number of migrations applied.
 * A database whose version is higher than MIGRATIONS.length was written by a newer release and is refused.
 *
 * Tables a user can rely on (documented in docs/database.md):
 *   experiments(id, name, description, spec_path, spec_yaml, spec_resolved, created_at, updated_at)
 *   jobs(id, experiment_id, cell_index, config, config_hash, labels, seed, status, attempts, started_at, ended_at,
 *        heartbeat_at, host, pid, backend, device, git_commit, error, last_step, source_job_id, pid_started, lease_until,
 *        resumed_from_step, copied_from_job_id, in_grid)
 *   metrics(job_id, step, name, value, elapsed_seconds)      -- curves, per step (training and evaluation)
 *   results(job_id, name, value)                             -- final numbers
 *   artifacts(job_id, name, path)                            -- files a job left behind (checkpoints)
 *   job_logs(job_id, seq, at, message)                       -- the trainer's log lines of the job's last attempt
 */

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    spec_path TEXT,
    spec_yaml TEXT,            -- the spec file as written
    spec_resolved TEXT,        -- JSON: see framework/store/types.ts ResolvedSpecRecord
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    cell_index INTEGER NOT NULL,             -- position in the expanded grid
    config TEXT NOT NULL,                    -- resolved TrainConfig as JSON, nested as in the YAML
    config_hash TEXT NOT NULL,
    labels TEXT NOT NULL,                    -- JSON object: axis name -> value label
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    ended_at TEXT,
    heartbeat_at TEXT,
    host TEXT,
    pid INTEGER,
    backend TEXT,
    device TEXT,
    git_commit TEXT,
    error TEXT,
    last_step INTEGER,
    UNIQUE (experiment_id, config_hash)
  );
  CREATE INDEX jobs_by_status ON jobs(experiment_id, status);
  CREATE TABLE metrics (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    elapsed_seconds REAL
  );
  CREATE INDEX metrics_by_job ON metrics(job_id, name, step);
  CREATE TABLE results (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (job_id, name)
  );
  CREATE TABLE artifacts (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
  );
  `,
  // 2: evaluation-only jobs name the job whose trained weights they evaluate.
  `
  ALTER TABLE jobs ADD COLUMN source_job_id INTEGER REFERENCES jobs(id);
  `,
  // 3: the trainer's log lines (backend choice, data, model size, phases), capped per job: the first and the last
  // lines are kept (see ResultStore.appendLogs), and a gap in seq is where lines were left out.
  `
  CREATE TABLE job_logs (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,                    -- 1, 2, ... in the order the coordinator received them
    at TEXT NOT NULL,                        -- when the coordinator received it (ISO 8601)
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
  );
  `,
  // 4: ownership of a running job as a lease. The owner renews lease_until every few seconds; past it another sweep may
  // take the job over. pid_started tells the owner process apart from a later process given the same pid.
  `
  ALTER TABLE jobs ADD COLUMN pid_started INTEGER;  -- the owner's start time: /proc/PID/stat field 22 (clock ticks since boot)
  ALTER TABLE jobs ADD COLUMN lease_until TEXT;     -- ISO 8601, by the owner's clock
  `,
  // 5: a job that went on from a mid-training resume state records the step it started from; its curve keeps the
  // points up to that step from the attempt that saved the state.
  `
  ALTER TABLE jobs ADD COLUMN resumed_from_step INTEGER;
  `,
  // 6: a job done by copying what an identical job (same config hash) of another experiment recorded, instead of
  // training again (ResultStore.copyIdenticalJob).
  `
  ALTER TABLE jobs ADD COLUMN copied_from_job_id INTEGER REFERENCES jobs(id);
  `,
  // 7: whether the job is in the grid of its experiment's spec as last swept. A spec edited since (a value changed, an
  // axis dropped) leaves its earlier jobs here, recorded as they were, but reports and status leave them out, so that
  // two versions of a cell never mix in one table; sweeping the earlier spec again brings them back.
  `
  ALTER TABLE jobs ADD COLUMN in_grid INTEGER NOT NULL DEFAULT 1;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
