/**
 * Relative data locations in a spec (data.path, and the shard patterns data.train / data.val) are made absolute when
 * the spec is loaded, against the working directory of the command that loads it (`sweep`, `status`, ...). That was
 * already the rule for data.path when every job ran in the sweep's own folder; resolving here keeps it true on every
 * executor, since a BullMQ worker or a Slurm task may run in another folder: jobs receive absolute paths.
 *
 * The working directory rather than the spec file's folder: specs name data the way the scripts write it
 * (`data/fashion-shards/...` from the repository root), `--set data.path=...` is typed relative to the shell, and
 * open_clip's `--train-data` reads the same way. Labels keep the values as written.
 */
import { isAbsolute, resolve, sep } from 'node:path';
import { getPath, setPath } from './config-paths.js';

export const DATA_PATH_KEYS = ['data.path', 'data.train', 'data.val'] as const;
const SHARD_PATTERN_KEYS = new Set<string>(['data.train', 'data.val']);

/**
 * A shard pattern with each '::' part made absolute. The part is prefixed, not normalized, so a brace group that
 * holds '..' or '/' ('{a,b}/../x') keeps its meaning for the expansion that follows.
 */
function absolutePattern(pattern: string, cwd: string): string {
  return pattern
    .split('::')
    .map((part) => {
      const p = part.trim();
      return p === '' || isAbsolute(p) ? part : `${cwd.endsWith(sep) ? cwd : cwd + sep}${p}`;
    })
    .join('::');
}

/** The value of `key` made absolute against `cwd`; anything but a non-empty string is returned as is. */
export function absoluteDataPath(key: string, value: unknown, cwd: string): unknown {
  if (typeof value !== 'string' || value.trim() === '') return value;
  return SHARD_PATTERN_KEYS.has(key) ? absolutePattern(value, cwd) : resolve(cwd, value);
}

/** Overrides by dotted path ({"data.train": ...}) with their data locations made absolute. */
export function absoluteOverrides(overrides: Record<string, unknown>, cwd: string): Record<string, unknown> {
  const out = { ...overrides };
  for (const key of DATA_PATH_KEYS) if (key in out) out[key] = absoluteDataPath(key, out[key], cwd);
  return out;
}

/** A nested config ({data: {path}}) with its data locations made absolute. */
export function absoluteConfig<T extends Record<string, unknown>>(config: T, cwd: string): T {
  let out = config;
  for (const key of DATA_PATH_KEYS) {
    const value = getPath(out, key);
    if (value !== undefined) out = setPath(out, key, absoluteDataPath(key, value, cwd));
  }
  return out;
}
