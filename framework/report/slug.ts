/**
 * Folder names for experiments. Names may hold anything (slashes, markup, dots): characters outside
 * [A-Za-z0-9._-] become '_', names made only of dots are prefixed, and names that collide once sanitised get
 * '-<experiment id>' so two experiments never share a folder. Assigned over all experiments of a database in id
 * order, so a folder name does not depend on which experiments one run reports.
 */
export function sanitize(name: string): string {
  let s = name.replace(/[^A-Za-z0-9._-]/g, '_');
  if (s === '' || /^\.+$/.test(s)) s = `_${s}`;
  return s.slice(0, 120);
}

/** Files of the reports folder itself that no experiment folder may take. */
const RESERVED = ['index.html', 'paper-results.json'];

export function assignSlugs(experiments: readonly { id: number; name: string }[]): Map<number, string> {
  const out = new Map<number, string>();
  const used = new Set<string>(RESERVED);
  for (const e of [...experiments].sort((a, b) => a.id - b.id)) {
    let slug = sanitize(e.name);
    if (used.has(slug.toLowerCase())) slug = `${slug}-${e.id}`;
    used.add(slug.toLowerCase());
    out.set(e.id, slug);
  }
  return out;
}
