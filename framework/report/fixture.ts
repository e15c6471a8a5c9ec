/**
 * Writes results databases the way a sweep would (MIGRATIONS applied, user_version set): for the report tests and
 * the benchmark. Not used when reporting.
 */
import { MIGRATIONS } from '../store/schema.js';
import type { JobStatus, ResolvedSpecRecord } from '../store/types.js';
import { openWritable, type Database } from './sqlite.js';

export interface FixtureJob {
  labels: Record<string, string>;
  config: unknown;
  seed?: number;
  status: JobStatus;
  attempts?: number;
  error?: string | null;
  backend?: string;
  results?: Record<string, number>;
  /** name -> [step, value, elapsed_seconds][] */
  metrics?: Record<string, [number, number, number | null][]>;
}

export class FixtureDb {
  readonly db: Database;
  private clock = Date.parse('2026-11-20T10:00:00Z');

  constructor(readonly path: string) {
    this.db = openWritable(path);
    this.db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS) this.db.exec(m);
    this.db.pragma(`user_version = ${MIGRATIONS.length}`);
  }

  private tick(): string {
    this.clock += 60_000;
    return new Date(this.clock).toISOString();
  }

  addExperiment(resolved: ResolvedSpecRecord, specYaml: string | null = null): number {
    const now = this.tick();
    const r = this.db
      .prepare('INSERT INTO experiments (name, description, spec_path, spec_yaml, spec_resolved, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id')
      .get(resolved.name, resolved.description, resolved.file, specYaml, JSON.stringify(resolved), now, now) as { id: number };
    return r.id;
  }

  addJobs(experimentId: number, jobs: readonly FixtureJob[]): number[] {
    const insJob = this.db.prepare(
      `INSERT INTO jobs (experiment_id, cell_index, config, config_hash, labels, seed, status, attempts, started_at, ended_at,
                         heartbeat_at, host, pid, backend, device, git_commit, error, last_step)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'fixture-host', 1234, ?, 'cpu', 'abc1234', ?, ?) RETURNING id`,
    );
    const insResult = this.db.prepare('INSERT INTO results (job_id, name, value) VALUES (?, ?, ?)');
    const insMetric = this.db.prepare('INSERT INTO metrics (job_id, step, name, value, elapsed_seconds) VALUES (?, ?, ?, ?, ?)');
    const ids: number[] = [];
    const tx = this.db.transaction(() => {
      jobs.forEach((j, i) => {
        const started = j.status === 'pending' ? null : this.tick();
        const ended = j.status === 'done' || j.status === 'failed' || j.status === 'interrupted' ? this.tick() : null;
        const steps = Object.values(j.metrics ?? {}).flatMap((pts) => pts.map((p) => p[0]));
        const lastStep = steps.length ? Math.max(...steps) : null;
        const row = insJob.get(
          experimentId, i, JSON.stringify(j.config), `hash-${experimentId}-${i}`, JSON.stringify(j.labels), j.seed ?? 0, j.status,
          j.attempts ?? (j.status === 'pending' ? 0 : 1), started, ended, started, j.backend ?? 'wasm', j.error ?? null, lastStep,
        ) as { id: number };
        ids.push(row.id);
        for (const [name, value] of Object.entries(j.results ?? {})) insResult.run(row.id, name, value);
        for (const [name, pts] of Object.entries(j.metrics ?? {})) for (const [step, value, el] of pts) insMetric.run(row.id, step, name, value, el);
      });
    });
    tx();
    return ids;
  }

  close(): void {
    this.db.close();
  }
}
