/** Pieces shared by the command-line entry points: argument parsing with clear errors, the default database path. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { execFileSync } from 'node:child_process';
import { ResultStore, StoreError } from '../store/result-store.js';

export const DEFAULT_DB = 'results/results.db';

/** Exit codes: 0 ok, 1 a run or I/O failure, 2 invalid input (spec, flags), 3 jobs left not done to another live
 * sweep (sweep without --wait), 130 stopped by Ctrl-C. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, leftElsewhere: 3, interrupted: 130 } as const;

export function parseCli<T extends ParseArgsConfig['options']>(command: string, usage: string, options: T, args = process.argv.slice(2)) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`${command}: ${(err as Error).message}\n\n${usage}`, EXIT.invalid);
  }
}

export function fail(message: string, code: number): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

/** A positive integer flag, or a clear error naming the flag. */
export function intFlag(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name}: found "${value}"; allowed: an integer >= ${min}`, EXIT.invalid);
  return n;
}

/** The commit of the working tree ("<sha>+dirty" with uncommitted changes), or null outside a git checkout. */
export function gitCommit(): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return null;
  }
}

/** Opens the results database, or exits with code 1 and the store's one-paragraph explanation. */
export function openStore(path: string, options: { readonly?: boolean } = {}): ResultStore {
  try {
    return ResultStore.open(path, options);
  } catch (err) {
    if (err instanceof StoreError) fail(err.message, EXIT.failed);
    throw err;
  }
}
