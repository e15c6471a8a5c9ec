/** Row shapes of the results database, as a reader (reports, query) sees them. */

export type JobStatus = 'pending' | 'running' | 'done' | 'failed' | 'interrupted';
export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'running', 'done', 'failed', 'interrupted'];

/** One axis of an experiment, in the order the spec declares it. Seeds appear as the axis named 'seed'. */
export interface AxisRecord {
  /** A config path ('mask.image_ratio'), a variant group name ('text_mask') or 'seed'. */
  name: string;
  /** Labels in declaration order; jobs.labels[name] is one of these. */
  labels: string[];
}

/** How the spec asks to be reported (the spec's `report:` section with defaults filled in). */
export interface ReportSpec {
  /** Axis shown as table rows. Defaults to the first axis that is not 'seed'. */
  rows: string | null;
  /** Optional second axis shown as columns, making a grid (Table 1b). */
  columns: string | null;
  /** Result names shown as columns (ignored for a grid, which shows `metrics[0]`). */
  metrics: string[];
  /** Labels of the baseline cell: shaded, and the reference of relative time / FLOPs (e.g. "0.50x"). */
  baseline: Record<string, string> | null;
  /** Key into reports/paper-results.json to show the paper's numbers beside ours, e.g. 'table1a'. */
  paper: string | null;
}

/** experiments.spec_resolved, parsed. */
export interface ResolvedSpecRecord {
  name: string;
  description: string;
  file: string | null;
  axes: AxisRecord[];
  report: ReportSpec;
  /** The whole spec after `extends:` and `--set`, as plain data. */
  spec: unknown;
}

export interface ExperimentRow {
  id: number;
  name: string;
  description: string;
  spec_path: string | null;
  spec_yaml: string | null;
  spec_resolved: string | null;
  created_at: string;
  updated_at: string;
}

export interface JobRow {
  id: number;
  experiment_id: number;
  cell_index: number;
  config: string;
  config_hash: string;
  labels: string;
  seed: number;
  status: JobStatus;
  attempts: number;
  started_at: string | null;
  ended_at: string | null;
  heartbeat_at: string | null;
  host: string | null;
  pid: number | null;
  backend: string | null;
  device: string | null;
  git_commit: string | null;
  error: string | null;
  last_step: number | null;
  /** For an evaluation-only job: the job whose trained weights it evaluates. */
  source_job_id: number | null;
  /** The owner process's start time (clock ticks since boot, from /proc/PID/stat), telling it apart from a reused pid. */
  pid_started: number | null;
  /** Until when the owner holds the job; it renews this every few seconds while the job runs. */
  lease_until: string | null;
  /** The step of the mid-training resume state the last attempt went on from; null when it started from step 0. */
  resumed_from_step: number | null;
  /** Done without training: what this identical job (same config hash) of another experiment recorded was copied. */
  copied_from_job_id: number | null;
  /** 1: in the grid of the experiment's spec as last swept; 0: from an earlier version of the spec (migration 7). */
  in_grid: number;
}

/** One line of job_logs: a log line of the trainer, as the coordinator received it. */
export interface JobLogRow {
  job_id: number;
  /** 1, 2, ... per attempt; a gap means the lines between were left out (the cap per job). */
  seq: number;
  at: string;
  message: string;
}
