/** How a sweep shows the trainer's log lines: prefixed by the job, and on a terminal above the live block. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogProgress, TerminalProgress, type JobView } from '../framework/run/progress.js';

const job = (): JobView => ({ id: 3, label: 'mask.image_ratio=0.5 seed=1', step: 2, totalSteps: 10, timeBudgetS: null, trainSeconds: 0.4, startedAt: Date.now(), loss: 1.5 });

test('plain progress: each line of a job log message carries the job id and label', () => {
  const lines: string[] = [];
  const progress = new LogProgress((l) => lines.push(l));
  progress.jobLog(job(), 'backend: auto chose wasm\n  (webgpu: no adapter)');
  assert.deepEqual(lines, ['[job 3 mask.image_ratio=0.5 seed=1] backend: auto chose wasm', '[job 3 mask.image_ratio=0.5 seed=1]   (webgpu: no adapter)']);
});

test('terminal progress: a job log line is printed above the live block, which is redrawn below it', () => {
  let written = '';
  const out = { write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  const progress = new TerminalProgress(out);
  try {
    progress.planned(1, 1, 0);
    progress.started(job());
    written = '';
    progress.jobLog(job(), 'model: 215041 parameters');
    // Erase the block (cursor up, clear down), print the line, draw the block again.
    const visible = written.replace(/\x1b\[\d+A\x1b\[0J/g, '').replace(/\x1b\[[0-9;]*m/g, '').split('\n');
    assert.match(written, /^\x1b\[1A\x1b\[0J/, 'the block drawn before (the overall line) is erased first');
    assert.equal(visible[0], '[job 3 mask.image_ratio=0.5 seed=1] model: 215041 parameters');
    assert.match(visible[1], /^\[#*\.*\] 0\/1 jobs/);
    assert.match(visible[2], /^  job 3 mask\.image_ratio=0\.5 seed=1  step 2\/10/);
  } finally {
    progress.close();
  }
});

test('terminal progress: a job bounded by time alone shows its training seconds against the budget, not an estimated step count', () => {
  let written = '';
  const out = { write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  const progress = new TerminalProgress(out);
  try {
    progress.planned(1, 1, 0);
    // The plan estimated 146 steps; the job is past them after 14 of its 35 s.
    const timed: JobView = { ...job(), step: 480, totalSteps: 146, timeBudgetS: 35, trainSeconds: 14 };
    progress.started(timed);
    written = '';
    progress.jobLog(timed, 'eval at step 480 took 0.5 s');
    const visible = written.replace(/\x1b\[\d+A\x1b\[0J/g, '').replace(/\x1b\[[0-9;]*m/g, '').split('\n');
    assert.match(visible[2], /^  job 3 mask\.image_ratio=0\.5 seed=1  step 480, 14s\/35s \(40%\)  loss 1\.5000  eta 21s$/);
  } finally {
    progress.close();
  }
});
