/**
 * Shard patterns as webdataset and open_clip write them: '::' separates patterns (open_clip's list of sources), and
 * each pattern is brace-expanded the way Python's braceexpand (bash(1)) does it:
 *
 *   shards/{000000..000099}.tar   integer range; a leading zero pads every number to the widest end
 *   shards/{0..98..2}.tar         with a step; ranges may also run downwards ({9..0}) and over letters ({a..e})
 *   {train,extra}/{0..9}.tar      alternatives, nested braces allowed; '{,x}' has an empty alternative
 *
 * A brace group with neither a top-level comma nor a range ('{x}') stays as written, as in bash. Unbalanced braces
 * ('{' without its '}') are an error rather than bash's partial expansion, so a typo cannot silently name other files.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../events.js';

/** Expansions beyond this are a typo ({0..99999999}), not a data set. */
export const MAX_SHARDS = 1_000_000;

export class ShardPatternError extends Error {
  constructor(readonly pattern: string, reason: string) {
    super(`shard pattern "${pattern}": ${reason}`);
    this.name = 'ShardPatternError';
  }
}

/** Index of the '}' closing the '{' at `open`, or -1. */
function closingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Splits the body of a brace group at its top-level commas. */
function topLevelAlternatives(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '{') depth++;
    else if (body[i] === '}') depth--;
    else if (body[i] === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

const INT_RANGE = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/;
const CHAR_RANGE = /^([a-zA-Z])\.\.([a-zA-Z])(?:\.\.(-?\d+))?$/;

function steps(from: number, to: number, step: number, pattern: string): number[] {
  const by = Math.abs(step) || 1;
  const count = Math.floor(Math.abs(to - from) / by) + 1;
  if (count > MAX_SHARDS) throw new ShardPatternError(pattern, `a range of ${count} names is more than ${MAX_SHARDS}`);
  return Array.from({ length: count }, (_, i) => (to >= from ? from + i * by : from - i * by));
}

/** The items of a range body ('000..099', 'a..e', '0..10..2'), or null when the body is not a range. */
function rangeItems(body: string, pattern: string): string[] | null {
  const int = INT_RANGE.exec(body);
  if (int) {
    const [, a, b, step] = int;
    const padded = /^-?0\d/.test(a) || /^-?0\d/.test(b);
    const width = Math.max(a.replace('-', '').length, b.replace('-', '').length);
    return steps(Number(a), Number(b), Number(step ?? 1), pattern).map((n) => {
      if (!padded) return String(n);
      return (n < 0 ? '-' : '') + String(Math.abs(n)).padStart(width, '0');
    });
  }
  const chr = CHAR_RANGE.exec(body);
  if (chr) {
    const [, a, b, step] = chr;
    return steps(a.charCodeAt(0), b.charCodeAt(0), Number(step ?? 1), pattern).map((c) => String.fromCharCode(c));
  }
  return null;
}

function expandOne(s: string, pattern: string): string[] {
  let open = s.indexOf('{');
  while (open >= 0) {
    const close = closingBrace(s, open);
    if (close < 0) throw new ShardPatternError(pattern, `unbalanced '{' at "${s.slice(open)}"`);
    const body = s.slice(open + 1, close);
    const alternatives = topLevelAlternatives(body);
    const items = alternatives.length > 1 ? alternatives : rangeItems(body, pattern);
    if (items !== null) {
      const prefix = s.slice(0, open);
      const suffixes = expandOne(s.slice(close + 1), pattern);
      const out: string[] = [];
      for (const item of items) {
        for (const middle of expandOne(item, pattern)) {
          for (const suffix of suffixes) {
            out.push(prefix + middle + suffix);
            if (out.length > MAX_SHARDS) throw new ShardPatternError(pattern, `expands to more than ${MAX_SHARDS} names`);
          }
        }
      }
      return out;
    }
    // '{x}': the brace is kept as written; groups inside or after it still expand ('{{a,b}}' -> '{a}', '{b}').
    open = s.indexOf('{', open + 1);
  }
  return [s];
}

/** Every name a pattern stands for, in the pattern's order ('::' parts one after another). */
export function expandShardPattern(pattern: string): string[] {
  const parts = pattern.split('::');
  if (parts.some((p) => p.trim() === '')) throw new ShardPatternError(pattern, "an empty part between '::' separators");
  return parts.flatMap((p) => expandOne(p.trim(), pattern));
}

/**
 * The shard files of the pattern under config key `key`, as absolute paths (relative ones against the working
 * directory, as for data.path; specs arrive here already absolute, framework/spec/data-paths.ts). Every expanded name must be an existing file: a partly downloaded data set is
 * reported here, before training, rather than when the stream reaches the hole.
 */
export function resolveShards(key: string, pattern: unknown): string[] {
  if (typeof pattern !== 'string' || pattern.trim() === '') {
    throw new ConfigError(key, `${JSON.stringify(pattern)}; dataset 'webdataset' needs a shard pattern such as "shards/{000000..000009}.tar"`);
  }
  let names: string[];
  try {
    names = expandShardPattern(pattern);
  } catch (e) {
    if (e instanceof ShardPatternError) throw new ConfigError(key, e.message);
    throw e;
  }
  // A shard named twice stays twice (read twice per pass), as webdataset does with a repeated URL.
  const files = names.map((n) => resolve(n));
  const distinct = [...new Set(files)];
  const missing = distinct.filter((f) => !existsSync(f) || !statSync(f).isFile());
  if (missing.length === distinct.length) {
    const example = files.length === 1 ? files[0] : `${files[0]} ... ${files[files.length - 1]}`;
    throw new ConfigError(key, `shard pattern "${pattern}" matches no file (${files.length} name${files.length === 1 ? '' : 's'}: ${example})`);
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? `, and ${missing.length - 3} more` : '');
    throw new ConfigError(key, `shard pattern "${pattern}": ${missing.length} of ${distinct.length} shards are missing: ${shown}`);
  }
  return files;
}
