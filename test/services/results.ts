/** Reading what a sweep recorded, to compare executors: per config hash, status, attempts, results and curves. */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';

/** Measurements, not outcomes of the computation: wall-clock time and memory (peak_rss_bytes varies run to run;
 * peak_memory_bytes, bytes held by live tensors, was equal in repeated runs but once differed 7x with identical losses,
 * so it is not compared). Everything else a job records (results, losses, evaluations, samples_seen) is the same bit
 * for bit on one backend. */
export const TIMING_RESULTS = new Set(['train_seconds', 'eval_seconds', 'setup_seconds', 'pretune_train_seconds', 'peak_rss_bytes', 'peak_memory_bytes']);
export const TIMING_METRICS = new Set(['elapsed_seconds', 'pairs_per_second']);

export interface RecordedJob {
  hash: string;
  status: string;
  attempts: number;
  /** The job's error message (failed jobs), else null. */
  error: string | null;
  /** Deterministic results only. */
  results: Record<string, number>;
  resultNames: string[];
  /** name -> [step, value][] for the deterministic curves. */
  curves: Record<string, [number, number][]>;
  /** Rows in the metrics table per (step, name): 1 everywhere when nothing was recorded twice. */
  duplicatePoints: number;
  /** The trainer's log lines the coordinator stored (job_logs), in order. */
  logs: string[];
}

export function recordedJobs(db: string): Map<string, RecordedJob> {
  const d = new Database(db, { readonly: true });
  try {
    const jobs = new Map<string, RecordedJob>();
    for (const j of d.prepare('SELECT id, config_hash, status, attempts, error FROM jobs').all() as { id: number; config_hash: string; status: string; attempts: number; error: string | null }[]) {
      const results = d.prepare('SELECT name, value FROM results WHERE job_id = ? ORDER BY name').all(j.id) as { name: string; value: number }[];
      const metrics = d.prepare('SELECT step, name, value FROM metrics WHERE job_id = ? ORDER BY name, step').all(j.id) as { step: number; name: string; value: number }[];
      const curves: Record<string, [number, number][]> = {};
      for (const m of metrics) if (!TIMING_METRICS.has(m.name)) (curves[m.name] ??= []).push([m.step, m.value]);
      const { n } = d.prepare('SELECT COUNT(*) AS n FROM (SELECT step, name FROM metrics WHERE job_id = ? GROUP BY step, name HAVING COUNT(*) > 1)').get(j.id) as { n: number };
      jobs.set(j.config_hash, {
        hash: j.config_hash,
        status: j.status,
        attempts: j.attempts,
        error: j.error,
        results: Object.fromEntries(results.filter((r) => !TIMING_RESULTS.has(r.name)).map((r) => [r.name, r.value])),
        resultNames: results.map((r) => r.name),
        curves,
        duplicatePoints: n,
        logs: (d.prepare('SELECT message FROM job_logs WHERE job_id = ? ORDER BY seq').all(j.id) as { message: string }[]).map((l) => l.message),
      });
    }
    return jobs;
  } finally {
    d.close();
  }
}

/**
 * The distributed sweep recorded the same jobs, all done, with the same results and curves as the local one. With
 * `failed`, the local jobs it names by hash are expected to have failed, and must have failed on the executor too
 * with the same error (the other jobs are compared as above).
 */
export function assertSameAsLocal(actualDb: string, localDb: string, options: { failed?: string[] } = {}): Map<string, RecordedJob> {
  const actual = recordedJobs(actualDb);
  const local = recordedJobs(localDb);
  assert.deepEqual([...actual.keys()].sort(), [...local.keys()].sort(), 'the same config hashes');
  for (const [hash, expected] of local) {
    const got = actual.get(hash)!;
    if (options.failed?.includes(hash)) {
      assert.equal(expected.status, 'failed', `local job ${hash} was expected to fail`);
      assert.equal(got.status, 'failed', `job ${hash}`);
      assert.equal(got.error, expected.error, `error of job ${hash}`);
      continue;
    }
    assert.equal(expected.status, 'done', `local job ${hash}`);
    assert.equal(got.status, 'done', `job ${hash}`);
    assert.deepEqual(got.resultNames, expected.resultNames, `result names of job ${hash}`);
    assert.deepEqual(got.results, expected.results, `results of job ${hash} (bit for bit)`);
    assert.deepEqual(got.curves, expected.curves, `curves of job ${hash} (bit for bit)`);
    assert.equal(got.duplicatePoints, 0, `job ${hash}: a curve point recorded twice`);
    // The trainer's log reached this executor's coordinator (timings and paths in other lines differ between runs).
    const modelLine = expected.logs.find((l) => /^model: \d+ parameters/.test(l));
    assert.ok(modelLine, `local job ${hash} stored its "model: N parameters" log line`);
    assert.ok(got.logs.includes(modelLine), `job ${hash}: the trainer's log line "${modelLine}" is stored; found: ${JSON.stringify(got.logs)}`);
  }
  return actual;
}
