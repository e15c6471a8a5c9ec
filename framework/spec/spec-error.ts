/** Problems found in a spec, each with where it is (file:line:column), the spec key, what was found and what is allowed. */

export interface Location {
  file: string;
  line: number;
  col: number;
}

export interface SpecProblem {
  where: Location;
  /** Dotted key inside the spec, e.g. `axes.mask.image_ratio[2]` or `base.train.batch_size`. */
  key: string;
  message: string;
}

export function formatProblem(p: SpecProblem): string {
  const where = p.where.line > 0 ? `${p.where.file}:${p.where.line}:${p.where.col}` : p.where.file;
  return `${where}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}

/** Thrown when a spec cannot be used; carries every problem found, not just the first. */
export class SpecError extends Error {
  constructor(readonly problems: SpecProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'SpecError';
  }
}

/** A short, readable rendering of a found value for messages. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}

/** The closest of `candidates` to `word`, if it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
