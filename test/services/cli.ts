/** The CLIs as long-running child processes (a sweep, workers) whose output a test watches while they run. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

export interface RunningCli {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves on the first output line matching `pattern` (rejects if the process exits first or after timeoutMs). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
}

/**
 * `node --import tsx framework/cli/<script>.ts args`, from the repository root, as `npm run <script> --` does (`cwd`:
 * another folder inside the repository, where tsx is still found).
 */
export function startCli(script: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd = ROOT): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, `framework/cli/${script}.ts`), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    output += d.toString();
    for (const l of [...listeners]) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      // Let the last output arrive.
      setImmediate(() => resolve({ code, signal, output }));
    }),
  );
  let finished = false;
  void exited.then(() => {
    finished = true;
    for (const l of [...listeners]) l();
  });
  const waitForLine = (pattern: RegExp, timeoutMs = 120_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = output.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) done(() => resolve(line));
        else if (finished) done(() => reject(new Error(`${script} exited before printing a line matching ${pattern}; its output:\n${output}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${script}: no line matching ${pattern} after ${timeoutMs / 1000} s; its output:\n${output}`))), timeoutMs);
      const done = (then: () => void): void => {
        clearTimeout(timer);
        listeners.delete(check);
        then();
      };
      listeners.add(check);
      check();
    });
  return { child, output: () => output, waitForLine, exited };
}
