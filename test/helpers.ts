/** Test helpers: temporary spec files and running the CLIs as real child processes. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

export const ROOT = resolve(import.meta.dirname, '..');

export function tempDir(prefix = 'flip-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `files` (name -> text) into a new temp dir and returns the dir. */
export function writeFiles(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Runs `npm run <script> -- args` the way a user does (through tsx), from the repository root. */
export function runCli(script: 'sweep' | 'status' | 'query' | 'report', args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, `framework/cli/${script}.ts`), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    env: { ...process.env, ...opts.env },
  });
}
