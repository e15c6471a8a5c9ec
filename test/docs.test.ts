/**
 * The README and docs/ stay navigable as the code moves: every relative link reaches a file (and a heading, when it
 * names one), the README stays a short front door, and docs/environment.md lists exactly the FLIP_* variables the
 * code reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative } from 'node:path';
import { ROOT } from './helpers.js';

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Markdown without its fenced code blocks, where `](` is code, not a link. */
const prose = (text: string): string => text.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');

function anchors(file: string): Set<string> {
  const headings = prose(readFileSync(file, 'utf8')).match(/^#{1,6} .*$/gm) ?? [];
  return new Set(headings.map((h) => slug(h.replace(/^#+ /, ''))));
}

test('every relative link of the README and docs/ reaches an existing file and heading', () => {
  const broken: string[] = [];
  for (const doc of DOCS) {
    for (const [, target] of prose(readFileSync(join(ROOT, doc), 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue;
      const [path, anchor] = target.split('#');
      const file = path === '' ? join(ROOT, doc) : join(ROOT, dirname(doc), path);
      if (!existsSync(file)) broken.push(`${doc}: ${target} (no file ${relative(ROOT, file)})`);
      else if (anchor && extname(file) === '.md' && !anchors(file).has(anchor)) broken.push(`${doc}: ${target} (no heading "#${anchor}" in ${relative(ROOT, file)})`);
    }
  }
  assert.deepEqual(broken, []);
});

test('the README is a front door of at most 300 lines that links to every file of docs/', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.split('\n').length <= 300, `README.md has ${readme.split('\n').length} lines`);
  for (const doc of DOCS.slice(1)) assert.ok(readme.includes(`](${doc})`), `README.md links to ${doc}`);
});

/** Source files of this project (not node_modules, not the native build output). */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink() || name === 'node_modules' || name === 'build') return [];
    if (stat.isDirectory()) return sources(path);
    return /\.(ts|mjs|js|cc|h|sh)$/.test(name) || name === 'run' ? [path] : [];
  });
}

/** Names read as environment variables: process.env.X / env.X, getenv("X"), and $X / ${X} in shell. */
const ENV_READ = /(?:\benv\.|getenv\(")(FLIP_[A-Z0-9_]+)|\$\{?(FLIP_[A-Z0-9_]+)/g;

test('docs/environment.md has one row for each FLIP_* variable the code reads, and no other', () => {
  const read = new Set<string>();
  for (const dir of ['framework', 'models', 'scripts', 'native', 'test', '.ci']) {
    for (const file of sources(join(ROOT, dir))) {
      for (const m of readFileSync(file, 'utf8').matchAll(ENV_READ)) read.add(m[1] ?? m[2]);
    }
  }
  const table = readFileSync(join(ROOT, 'docs/environment.md'), 'utf8').split('\n').filter((l) => l.startsWith('| `'));
  const documented = new Set(table.flatMap((row) => row.split(' | ')[0].match(/FLIP_[A-Z0-9_]+/g) ?? []));
  assert.ok(read.has('FLIP_NATIVE_THREADS') && read.has('FLIP_NATIVE_SPIN_US'), 'the scan finds reads in TypeScript and C++');
  assert.deepEqual([...read].filter((v) => !documented.has(v)).sort(), [], 'read by the code but not in docs/environment.md');
  assert.deepEqual([...documented].filter((v) => !read.has(v)).sort(), [], 'in docs/environment.md but read nowhere');
});
