/** Test helpers: temporary spec files and running the CLIs as real child processes. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import assert from 'node:assert/strict';

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
export function runCli(script: 'sweep' | 'status' | 'query' | 'report' | 'bench', args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, `framework/cli/${script}.ts`), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    env: { ...process.env, ...opts.env },
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (not undefined), or fails after `seconds` saying what it waited for. */
export async function until<T>(what: string, check: () => T | undefined, seconds = 90): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
