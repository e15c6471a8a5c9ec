/**
 * The whole path with the real trainer in real child processes: spec -> grid -> jobs -> SQLite, resume, retries,
 * Ctrl-C, and the query/status commands on the database a sweep wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { resolveConfig } from '../models/config.js';
import { jobBundle } from '../framework/run/job-bundle.js';
import { LocalExecutor } from '../framework/run/local-executor.js';
import { ROOT, runCli, writeFiles } from './helpers.js';

const TINY = `
base:
  data: { dataset: shapes, train_size: 256, eval_size: 64, image_size: 16 }
  model: { preset: tiny }
  train: { batch_size: 16, steps: 6 }
`;

function jobs(db: string) {
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT * FROM jobs ORDER BY cell_index').all() as Record<string, unknown>[];
  d.close();
  return rows;
}

test('smoke.yaml runs end to end and records configs, curves and results', () => {
  const db = join(writeFiles({}), 'results.db');
  const run = runCli('sweep', ['experiments/smoke.yaml', '--db', db]);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /smoke: 4 done, 0 failed, 0 interrupted, 0 already done before/);
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT * FROM jobs').all() as Record<string, unknown>[];
  assert.equal(rows.length, 4);
  for (const row of rows) {
    assert.equal(row.status, 'done');
    assert.equal(row.attempts, 1);
    assert.equal(row.backend, 'wasm');
    assert.ok(row.started_at && row.ended_at && row.host && row.git_commit !== undefined);
    const config = JSON.parse(String(row.config));
    assert.equal(config.model.preset, 'tiny');
    assert.equal(config.train.steps, 30);
    assert.equal(config.seed, Number(JSON.parse(String(row.labels)).seed));
  }
  const resultNames = (d.prepare('SELECT DISTINCT name FROM results').all() as { name: string }[]).map((r) => r.name);
  for (const name of ['zero_shot_top1', 'zero_shot_top5', 'retrieval_i2t_r1', 'retrieval_t2i_r1', 'train_seconds', 'samples_seen', 'train_flops', 'peak_memory_bytes']) {
    assert.ok(resultNames.includes(name), `result ${name}`);
  }
  const losses = d.prepare("SELECT COUNT(*) n FROM metrics WHERE name = 'loss' GROUP BY job_id").all() as { n: number }[];
  assert.deepEqual(losses.map((l) => l.n), [30, 30, 30, 30]);
  const evals = d.prepare("SELECT DISTINCT step FROM metrics WHERE name = 'zero_shot_top1' ORDER BY step").all() as { step: number }[];
  assert.ok(evals.some((e) => e.step === 15), 'an evaluation curve point at eval.every');
  const experiment = d.prepare('SELECT * FROM experiments').get() as Record<string, string>;
  assert.equal(experiment.name, 'smoke');
  assert.match(experiment.spec_yaml, /name: smoke/);
  assert.deepEqual(JSON.parse(experiment.spec_resolved).axes.map((a: { name: string }) => a.name), ['mask.image_ratio', 'seed']);
  d.close();

  // Rerunning skips every done job.
  const again = runCli('sweep', ['experiments/smoke.yaml', '--db', db]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /4 jobs: 4 already done, 0 to run/);
  assert.deepEqual(jobs(db).map((r) => r.attempts), [1, 1, 1, 1]);

  // The read-only query command on the same database.
  const csv = runCli('query', ["SELECT j.labels, r.value FROM jobs j JOIN results r ON r.job_id = j.id WHERE r.name = 'samples_seen' ORDER BY j.cell_index", '--db', db, '--format', 'csv']);
  assert.equal(csv.status, 0, csv.stderr);
  assert.deepEqual(csv.stdout.trim().split('\n'), ['labels,value', ...['0', '0', '0.5', '0.5'].map((m, i) => `"{""mask.image_ratio"":""${m}"",""seed"":""${i % 2}""}",960`)]);
  const json = runCli('query', ["SELECT status, COUNT(*) AS n FROM jobs GROUP BY status", '--db', db, '--format', 'json']);
  assert.deepEqual(JSON.parse(json.stdout), [{ status: 'done', n: 4 }]);
  const write = runCli('query', ["UPDATE jobs SET status = 'failed'", '--db', db]);
  assert.equal(write.status, 2);
  assert.match(write.stderr, /refused, "npm run query" is read-only/);
  assert.deepEqual(jobs(db).map((r) => r.status), ['done', 'done', 'done', 'done']);
  const status = runCli('status', ['--db', db]);
  assert.match(status.stdout, /smoke\s+4\s+0\s+0\s+4\s+0\s+0/);
});

test("the trainer's log lines reach the sweep's output with the job's prefix, are stored per job, and status shows them", () => {
  const dir = writeFiles({ 's.yaml': `name: logs\n${TINY}\nseeds: [0, 1]\n` });
  const db = join(dir, 'r.db');
  // The seed-1 job crashes at step 3: its log up to then is kept with the failed attempt.
  const run = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--retries', '0', '--plain'], { env: { FLIP_SWEEP_FAULT: 'crash@3,seed=1' } });
  assert.equal(run.status, 1, run.stderr + run.stdout);
  const [ok, crashed] = jobs(db);
  assert.deepEqual([ok.status, crashed.status], ['done', 'failed']);
  for (const [job, seed] of [[ok, 0], [crashed, 1]] as const) {
    assert.match(run.stdout, new RegExp(`^\\[job ${job.id} seed=${seed}\\] model: \\d+ parameters; peak lr`, 'm'));
    assert.match(run.stdout, new RegExp(`^\\[job ${job.id} seed=${seed}\\] data 'shapes': 256 train / 64 eval pairs`, 'm'));
  }
  assert.match(run.stdout, new RegExp(`^\\[job ${ok.id} seed=0\\] eval at step 6 took`, 'm'));

  const d = new Database(db, { readonly: true });
  const logs = (id: unknown) => (d.prepare('SELECT seq, at, message FROM job_logs WHERE job_id = ? ORDER BY seq').all(id) as { seq: number; at: string; message: string }[]);
  const okLog = logs(ok.id);
  const crashedLog = logs(crashed.id);
  d.close();
  assert.deepEqual(okLog.map((l) => l.seq), okLog.map((_, i) => i + 1));
  assert.ok(okLog.every((l) => !Number.isNaN(Date.parse(l.at))), 'each line has the time it arrived');
  assert.match(okLog.map((l) => l.message).join('\n'), /^model: \d+ parameters; peak lr .*\n(.*\n)*eval at step 6 took/m);
  assert.ok(crashedLog.some((l) => /^model: \d+ parameters/.test(l.message)), 'the crashed job kept the lines it logged before the crash');
  assert.ok(!crashedLog.some((l) => /^eval at step/.test(l.message)), 'nothing of the crashed job after step 3');
  // Every line the sweep printed for a job is stored with it, in the same order.
  const printed = (id: unknown, seed: number) => run.stdout.split('\n').filter((l) => l.startsWith(`[job ${id} seed=${seed}] `)).map((l) => l.slice(`[job ${id} seed=${seed}] `.length));
  assert.deepEqual(printed(ok.id, 0), okLog.map((l) => l.message));
  assert.deepEqual(printed(crashed.id, 1), crashedLog.map((l) => l.message));

  const status = runCli('status', ['--experiment', 'logs', '--db', db]);
  assert.equal(status.status, 0, status.stderr);
  const section = (text: string, id: unknown) => text.split(/\n(?=\njob \d+ )/).find((part) => part.startsWith(`\njob ${id} `)) ?? '';
  const last5 = okLog.slice(-5);
  assert.match(section(status.stdout, ok.id), new RegExp(`^\\njob ${ok.id} seed=0 \\(done\\): ${last5.length === okLog.length ? `${okLog.length} log lines` : `5 of ${okLog.length} log lines`}\\n`));
  for (const line of last5) assert.ok(section(status.stdout, ok.id).split('\n').includes(`  ${line.at.slice(0, 19).replace('T', ' ')}  ${line.message}`), `status shows "${line.message}"`);
  assert.match(section(status.stdout, crashed.id), new RegExp(`^\\njob ${crashed.id} seed=1 \\(failed\\): ${crashedLog.length} log lines\\n(.*\\n)*  \\S+ \\S+  model: \\d+ parameters`));

  const one = runCli('status', ['--experiment', 'logs', '--db', db, '--logs', '1']);
  assert.match(section(one.stdout, ok.id), new RegExp(`\\(done\\): 1 of ${okLog.length} log lines\\n  \\S+ \\S+  ${okLog.at(-1)!.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n?$`));
  const none = runCli('status', ['--experiment', 'logs', '--db', db, '--logs', '0']);
  assert.doesNotMatch(none.stdout, /log lines|model: /);
  const all = runCli('status', ['--experiment', 'logs', '--db', db, '--logs', 'all']);
  for (const line of okLog) assert.ok(all.stdout.includes(line.message), `--logs all shows "${line.message}"`);
  const bad = runCli('status', ['--experiment', 'logs', '--db', db, '--logs', 'some']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--logs: found "some"; allowed: an integer >= 0 .* or "all"/);
});

test('a spec that gains axis values runs only the new cells', () => {
  const dir = writeFiles({ 'a.yaml': `name: grow\n${TINY}\naxes:\n  mask.image_ratio: [0]\n`, 'b.yaml': `name: grow\n${TINY}\naxes:\n  mask.image_ratio: [0, 0.5, 0.75]\n` });
  const db = join(dir, 'r.db');
  assert.equal(runCli('sweep', [join(dir, 'a.yaml'), '--db', db]).status, 0);
  const first = jobs(db)[0];
  const run = runCli('sweep', [join(dir, 'b.yaml'), '--db', db]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /3 jobs: 1 already done, 2 to run/);
  const rows = jobs(db);
  assert.equal(rows.length, 3);
  assert.equal(rows[0].ended_at, first.ended_at, 'the finished job was not retrained');
});

test('a crashing job is retried, recorded as failed with its last step, and rerun by the next sweep', () => {
  const dir = writeFiles({ 's.yaml': `name: crash\n${TINY}\n` });
  const db = join(dir, 'r.db');
  const crashed = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--retries', '1'], { env: { FLIP_SWEEP_FAULT: 'crash@3' } });
  assert.equal(crashed.status, 1, crashed.stderr);
  let [row] = jobs(db);
  assert.equal(row.status, 'failed');
  assert.equal(row.attempts, 2);
  assert.match(String(row.error), /the job process was killed by SIGKILL before reporting a result.*\(last step [23]\)/s);
  const fixed = runCli('sweep', [join(dir, 's.yaml'), '--db', db]);
  assert.equal(fixed.status, 0, fixed.stderr);
  [row] = jobs(db);
  assert.equal(row.status, 'done');
  assert.equal(row.attempts, 3);
  assert.equal(row.error, null);
});

test('Ctrl-C stops cleanly: running jobs become interrupted, finished ones stay, and the next run resumes', async () => {
  const dir = writeFiles({ 's.yaml': `name: stop\n${TINY.replace('steps: 6', 'steps: 1000')}\naxes:\n  mask.image_ratio: [0, 0.5, 0.75]\n` });
  const db = join(dir, 'r.db');
  const child = spawn(process.execPath, ['--import', 'tsx', 'framework/cli/sweep.ts', join(dir, 's.yaml'), '--db', db, '--concurrency', '1'], { cwd: ROOT });
  let out = '';
  let watching = false;
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (watching || !/start mask\.image_ratio=0$/m.test(out)) return;
      watching = true;
      // Ctrl-C once the first job has recorded training steps (not after a fixed delay: how far a job gets in a given
      // time depends on the machine and the trainer's speed).
      const poll = setInterval(() => {
        if (Number(jobs(db)[0]?.last_step ?? 0) < 1) return;
        clearInterval(poll);
        child.kill('SIGINT');
      }, 20);
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.equal(code, 130, out);
  const rows = jobs(db);
  assert.deepEqual(rows.map((r) => r.status), ['interrupted', 'pending', 'pending']);
  assert.ok(Number(rows[0].last_step) >= 1 && Number(rows[0].last_step) < 1000, `interrupted during training: last step ${rows[0].last_step}`);
  assert.match(String(rows[0].error), /interrupted by the user \(Ctrl-C\)/);
  const resumed = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--set', 'train.steps=5']);
  // --set changes the config, so these are new cells; the interrupted one stays as it was.
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /3 jobs: 0 already done, 3 to run/);
});

test('--gpus: the local executor runs one job per GPU slot at a time and tells each job its slot', async () => {
  const executor = new LocalExecutor({ gpus: ['0', '1'] });
  const config = resolveConfig({ data: { train_size: 128, eval_size: 32, image_size: 16 }, model: { preset: 'tiny' }, train: { batch_size: 16, steps: 4 } });
  const spans: { slot: string; start: number; end: number }[] = [];
  await Promise.all(
    [0, 1, 2, 3].map(async (seed) => {
      let start = 0;
      let slot = '';
      const outcome = await executor.run({ ...config, seed }, (m) => {
        if (m.type === 'start') {
          start = Date.now();
          slot = /\[gpu slot (\d)\]$/.exec(m.device)?.[1] ?? '?';
        }
      }, new AbortController().signal);
      assert.equal(outcome.kind, 'result');
      spans.push({ slot, start, end: Date.now() });
    }),
  );
  assert.deepEqual(spans.map((s) => s.slot).sort(), ['0', '0', '1', '1']);
  for (const slot of ['0', '1']) {
    const [a, b] = spans.filter((s) => s.slot === slot).sort((x, y) => x.start - y.start);
    assert.ok(a.end <= b.start, `slot ${slot}: the second job started after the first ended`);
  }
});

test('the local executor gives each job its share of the native kernels\' threads (FLIP_NATIVE_THREADS), unless the user set it', async (t) => {
  const config = resolveConfig({ data: { train_size: 64, eval_size: 16, image_size: 16 }, model: { preset: 'tiny' }, train: { batch_size: 8, steps: 1 } });
  const deviceOf = async (executor: LocalExecutor) => {
    let device = '';
    const outcome = await executor.run(config, (m) => {
      if (m.type === 'start') device = m.device;
    }, new AbortController().signal);
    assert.equal(outcome.kind, 'result');
    return device;
  };
  const one = await deviceOf(new LocalExecutor({ threadsPerJob: 1 }));
  if (!/native kernels: /.test(one)) {
    if (process.env.FLIP_TEST_REQUIRE_NATIVE === '1') assert.fail(`FLIP_TEST_REQUIRE_NATIVE=1 but the job ran ${one}`);
    return t.skip(`native kernels not in use: ${one}`);
  }
  assert.match(one, /native kernels: .*, 1 thread\)/);
  assert.match(await deviceOf(new LocalExecutor({ threadsPerJob: 2 })), /native kernels: .*, 2 threads\)/);
  // A value the user set wins over the executor's share.
  assert.match(await deviceOf(new LocalExecutor({ threadsPerJob: 2, env: { ...process.env, FLIP_NATIVE_THREADS: '1' } })), /, 1 thread\)/);
});

test('jobs start from the job process bundled once per coordinator: a content-named file that loads on its own', async () => {
  const bundle = await jobBundle();
  assert.ok(bundle && existsSync(bundle), `bundle: ${bundle}`);
  assert.match(bundle, /node_modules\/\.cache\/flip-sweep\/job-process-[0-9a-f]{16}\.mjs$/);
  assert.equal(await jobBundle(), bundle, 'made once per process');
  // Started by hand (no coordinator, no IPC channel) it loads every module it imports and exits: the bundle's package
  // imports resolve from where it lies.
  const run = spawnSync(process.execPath, [bundle], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
});

test('--gpus on the command line runs a sweep and records each job\'s GPU slot', () => {
  const dir = writeFiles({ 's.yaml': `name: gpus\n${TINY}\naxes:\n  mask.image_ratio: [0, 0.5]\n` });
  const db = join(dir, 'r.db');
  const run = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--gpus', '0,1']);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(jobs(db).map((r) => /\[gpu slot (\d)\]$/.test(String(r.device))), [true, true]);
});

test('evaluation-only cells reuse the weights of the job that trained them', () => {
  const dir = writeFiles({ 's.yaml': `name: reuse\n${TINY.replace('steps: 6', 'steps: 6 }\n  mask: { image_ratio: 0.5')}\naxes:\n  eval.inference: [unmasked, masked, ensemble]\n` });
  const db = join(dir, 'r.db');
  const plan = runCli('sweep', [join(dir, 's.yaml'), '--db', db, '--dry-run']);
  assert.match(plan.stdout, /3 jobs \(2 evaluation-only, reusing trained weights\)/);
  const run = runCli('sweep', [join(dir, 's.yaml'), '--db', db]);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT id, status, source_job_id FROM jobs ORDER BY cell_index').all() as { id: number; status: string; source_job_id: number | null }[];
  assert.deepEqual(rows.map((r) => [r.status, r.source_job_id]), [['done', null], ['done', rows[0].id], ['done', rows[0].id]]);
  const result = (id: number, name: string) => (d.prepare('SELECT value FROM results WHERE job_id = ? AND name = ?').get(id, name) as { value: number } | undefined)?.value;
  // The evaluation-only jobs trained nothing: they carry the trainer's time and FLOPs, and their own accuracy.
  assert.equal(result(rows[1].id, 'train_seconds'), result(rows[0].id, 'train_seconds'));
  assert.equal(result(rows[2].id, 'evaluated_from_job'), rows[0].id);
  assert.ok(result(rows[1].id, 'zero_shot_top1') !== undefined);
  const losses = d.prepare("SELECT job_id, COUNT(*) n FROM metrics WHERE name = 'loss' GROUP BY job_id").all() as { job_id: number }[];
  assert.deepEqual(losses.map((l) => l.job_id), [rows[0].id], 'only the training job has a loss curve');
  const checkpoint = d.prepare("SELECT path FROM artifacts WHERE job_id = ? AND name = 'final'").get(rows[0].id) as { path: string };
  assert.ok(existsSync(join(checkpoint.path, 'checkpoint.json')), checkpoint.path);
  d.close();
});
